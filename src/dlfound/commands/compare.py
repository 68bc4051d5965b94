"""`dlfound compare [key=value ...] RUN_OR_CKPT ...`: one table for every generative family (VAEs, flows, GANs,
diffusion and score models), scored the same way (dlfound.runs.generative).

    dlfound compare features=LENET_RUN/checkpoints/best-epoch001.ckpt n=10000 \\
        runs/mnist_vae runs/mnist_realnvp runs/mnist_dcgan runs/mnist_ddpm runs/mnist_ddpm@ddim:50
    dlfound compare runs/ring8_gan runs/ring8_wgan_gp runs/ring8_ddpm markdown=ring.md
    dlfound compare features=LENET.ckpt n=10000 VAE_RUN/checkpoints/last.ckpt   # FID and KID of one checkpoint

Arguments: any number of run folders or checkpoint files, mixed with key=value options.
  RUN               a run folder of `dlfound train`; which checkpoint is scored follows `checkpoint=`:
                    best (default): the best checkpoint named in RUN/results.json (the one the run was tested
                    on, so its bits/dim belong to it), else the newest RUN/checkpoints/best-*.ckpt, else last.ckpt;
                    last: RUN/checkpoints/last.ckpt
  PATH.ckpt         that checkpoint; when it lies in RUN/checkpoints/, RUN/results.json still gives the training
                    time and bits/dim
  ...@SAMPLER[:K]   a diffusion or score model with its own sampler and steps, e.g. RUN@ddim:50 beside RUN@ddpm
                    (the same checkpoint twice, one row each); overrides sampler=/steps= for that argument
Options:
  features=PATH     the classifier checkpoint whose penultimate features give FID and KID (required when an
                    image model is listed): `dlfound train experiment=mnist_lenet5 trainer.max_epochs=2`, then its
                    checkpoints/best-*.ckpt; also inception:PATH or pixels (see dlfound.metrics.sample_quality)
  n=10000           samples per image model, scored against the first n test images
  n2d=2500          samples per 2-D model (the PacGAN protocol: a mode is covered with 20 high-quality samples of
                    2,500)
  sampler=NAME      for diffusion models (ddpm, ddim) and score models (annealed, langevin); other families
                    ignore it; default: each run's configured sampler
  steps=K           denoising steps (diffusion) or Langevin steps per noise level (score models)
  checkpoint=best   or last (run folders only)
  device=auto       cpu, cuda or auto
  seed=0            every model samples from the same seed
  temperature=1.0   scale of the latent noise (flows: Glow samples look best at about 0.7)
  floor=true        add the data's own rows: training images against test images (FID/KID floor), and two
                    independent draws of a 2-D mixture (the MMD floor)
  markdown=PATH     also write the tables as Markdown, ready for the README

Columns (images): params = every parameter of the task's network (`task.net`: encoder and decoder of a VAE,
generator and discriminator of a GAN, whose JSON line adds generator_params; not the EMA copy); training =
`fit_time_s` of results.json and the trainer it ran on; bits/dim = results.json's test/bpd (flows, diffusion
models on images, measured by the run's test on its best checkpoint; VAEs and GANs have none: "–"); FID and KID
(unscaled, as the runs log them) on the features of `features=`, n samples against the first n test images
(conditional models cycle through the classes); sampling / 1k = seconds to draw 1,000 samples in batches of 500
on `device` (synchronised on a GPU, after a small warm-up draw). Columns (2-D): modes covered (of the mixture's)
and the high-quality fraction (within 3 std of a centre), weight error (the largest gap between the sampled and
the true weight of a mode), MMD^2 (multi-bandwidth Gaussian kernel, unbiased, so it can dip below 0) against the
test points. Every model prints one JSON line as it is scored; rich tables follow. FID from a dlfound classifier
compares only with FIDs on the same checkpoint, never with published Inception FIDs.
"""

from dlfound.errors import ConfigError, DlfoundError
from dlfound.runs.options import Option, parse_options, print_help_if_asked

USAGE = (
    "dlfound compare features=CLASSIFIER.ckpt [n=10000] [n2d=2500] [sampler=NAME] [steps=K] "
    "[checkpoint=best|last] [device=auto] [seed=0] [temperature=1.0] [floor=true] [markdown=PATH] "
    "RUN_OR_CKPT[@SAMPLER[:STEPS]] ..."
)
OPTIONS = {
    "features": Option(None),
    "n": Option(10000, int, minimum=2),
    "n2d": Option(2500, int, minimum=2),
    "sampler": Option(None),
    "steps": Option(None, int, minimum=1),
    "checkpoint": Option("best"),
    "device": Option("auto"),
    "seed": Option(0, int),
    "temperature": Option(1.0, float, above=0),
    "floor": Option(True, bool),
    "markdown": Option(None),
}


def main(argv: list[str]) -> None:
    if print_help_if_asked(argv, __doc__):
        return
    import json

    from rich.table import Table

    from dlfound.runs.console import console, fail

    try:
        from dlfound.runs.generative import compare, markdown_table, split_args, tables
        from dlfound.runs.options import resolve_device

        option_args, paths = split_args(argv, OPTIONS)
        options, _ = parse_options(option_args, OPTIONS, "compare", USAGE)
        if options["checkpoint"] not in ("best", "last"):
            raise ConfigError(f"checkpoint={options['checkpoint']}: choose best or last")
        if not paths:
            raise ConfigError("give at least one run folder or checkpoint to compare")
        device = resolve_device(options["device"])
        rows = compare(paths, options, device, on_row=lambda row: print(json.dumps(row), flush=True))
        parts = []
        for title, caption, header, cells in tables(rows, options, device):
            table = Table(title=f"{title}: {caption}", title_justify="left")
            for column in header:
                table.add_column(
                    column, justify="left" if column in ("model", "family", "data", "sampler") else "right"
                )
            for line in cells:
                table.add_row(*line)
            console.print(table)
            parts.append(f"{caption}\n\n{markdown_table(header, cells)}\n")
        if options["markdown"]:
            from dlfound.files import fresh_output_path, write_text

            out, renamed = fresh_output_path(options["markdown"])
            if renamed:
                console.print(renamed, highlight=False, markup=False)
            out = write_text(out, "\n".join(parts))
            console.print(f"wrote {out}", highlight=False)
    except DlfoundError as err:
        message = str(err).rstrip(". ")
        fail(f"{message}." + ("" if "Usage:" in message else f" Usage: {USAGE}"))
