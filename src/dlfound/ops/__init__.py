"""Plain tensor maths at the bottom of dlfound: functions on torch tensors that import nothing of dlfound (but
its errors), usable in a notebook with PyTorch alone. Data modules, tasks, metrics and commands call them.

    colour.py           BT.601 luma and YCbCr as MATLAB's rgb2ycbcr; rounding to 8-bit levels
    resize.py           MATLAB-compatible bicubic imresize; modcrop
    blur.py             Gaussian kernels and circular blur through the FFT
    plug_and_play.py    plug-and-play solvers (HQS, ADMM) that restore with a denoiser as the prior
    noise_schedules.py  the noising process of diffusion models (DDPM betas and closed forms, score sigmas)
    samplers.py         from noise to data: DDPM/DDIM and annealed Langevin dynamics
    likelihood.py       the DDPM variational bound, in nats and bits per dimension
    ntk/                neural tangent kernels: empirical, analytic, kernel regression, the linearised network
"""
