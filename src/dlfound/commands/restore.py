"""`dlfound restore`: apply a trained restoration model to one image of any size.

    dlfound restore ckpt_path=CKPT input=IMAGE output=OUT [task=...] [degradation options] [reference=CLEAN]

task (default: what the checkpoint was trained for)
  denoise   sigma=25 adds Gaussian noise of that level to the input first (a simulation: the input is then the
            clean reference); without sigma the input is taken as already noisy.
  sr        scale=2 shrinks the input by 2 (MATLAB bicubic) and enlarges it back, then restores it (simulation,
            output the input's size); upscale=2 enlarges a real low-resolution input by 2, then restores it.
  deblur    blurs the input with a blur_size x blur_size Gaussian of std blur_sigma (defaults: the checkpoint's,
            else 25 and 1.6) plus noise sigma (default 0), then deblurs. With degrade=false the input is
            taken as already blurred by that kernel.
  inpaint   drops mask_ratio of the pixels at random (or those black in mask=MASK.png), then fills them.
            With degrade=false the input is taken as already masked, and mask=MASK.png is required.
  A checkpoint trained for that very degradation restores in one pass. A denoiser (a checkpoint trained on
  noise) deblurs and inpaints by plug-and-play (dlfound.ops.plug_and_play): pnp_method=hqs|admm, pnp_iters=24 (40 for
  inpainting), pnp_sigma_start=49, pnp_sigma_end=1, pnp_lambda=0.23.

Also: reference=CLEAN prints PSNR/SSIM of the degraded and restored images against it (a simulation uses the
input itself); degraded_output=PATH saves the degraded image; seed=0 seeds the simulated noise and mask;
device=auto|cpu|cuda. Gray networks restore RGB photos channel by channel, or on the luma (YCbCr, chroma
enlarged by bicubic) when they were trained on luma (data.channels=y, the SR convention).
"""

from dlfound.errors import DlfoundError
from dlfound.runs.options import Option, parse_options, print_help_if_asked

USAGE = "dlfound restore ckpt_path=RUN/checkpoints/best-*.ckpt input=IMAGE output=OUT.png [task=...] [...]"
OPTIONS = {
    "ckpt_path": Option(required=True),
    "input": Option(required=True),
    "output": Option(required=True),
    "reference": Option(),
    "degraded_output": Option(),
    "task": Option(),
    "sigma": Option(None, float, minimum=0),
    "scale": Option(None, int, minimum=2),
    "upscale": Option(None, int, minimum=2),
    "blur_size": Option(None, int, minimum=1),
    "blur_sigma": Option(None, float, above=0),
    "mask_ratio": Option(None, float, minimum=0),
    "mask": Option(),
    "degrade": Option(True, bool),
    "seed": Option(0, int),
    "device": Option("auto"),
    "pnp_method": Option("hqs"),
    "pnp_iters": Option(None, int, minimum=1),
    "pnp_sigma_start": Option(None, float, above=0),
    "pnp_sigma_end": Option(None, float, above=0),
    "pnp_lambda": Option(None, float, above=0),
}


def main(args: list[str]) -> None:
    if print_help_if_asked(args, __doc__):
        return
    from rich.table import Table

    from dlfound.runs.console import console, fail

    try:
        options, _ = parse_options(args, OPTIONS, "restore", USAGE)
        from dlfound.runs.restoration import restore

        info = restore(options)
    except DlfoundError as err:
        fail(str(err))
    for note in info["renamed"]:
        console.print(note, highlight=False, markup=False)
    table = Table(title=f"dlfound restore  {options['input']} -> {info['output']}", title_style="bold")
    table.add_column("", style="cyan")
    table.add_column("value", justify="right")
    for key in ("task", "method", "degradation", "pnp", "denoiser"):
        if key in info:
            table.add_row(key, str(info[key]))
    table.add_row("output size (H x W)", " x ".join(map(str, info["size"])))
    for key, label in (
        ("psnr_input", "PSNR degraded (dB)"),
        ("psnr", "PSNR restored (dB)"),
        ("ssim_input", "SSIM degraded"),
        ("ssim", "SSIM restored"),
    ):
        if key in info:
            table.add_row(label, f"{info[key]:.4f}" if "ssim" in key else f"{info[key]:.2f}")
    console.print(table)
