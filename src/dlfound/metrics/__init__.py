"""Measurements shared by tasks, commands and scripts: PSNR/SSIM for restoration, FID/KID/MMD and mode coverage
for generative models."""
