"""Diffusion and score-based generative modelling, written out: noise schedules and their closed forms, the
samplers (DDPM ancestral, DDIM, annealed Langevin dynamics) and the DDPM variational bound. Plain torch: the
tasks in dlfound.tasks.diffusion and dlfound.tasks.score train the networks these functions call."""
