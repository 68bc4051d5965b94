"""`dlfound guided ckpt_path=PATH classifier=PATH [guidance=0,1,3] [...]`: how often a classifier sees the requested
class in a conditional generative model's samples: the check of classifier-free guidance (Ho & Salimans 2022), or
of any conditional VAE or GAN (dlfound.runs.generative).

    dlfound guided ckpt_path=COND_RUN/checkpoints/last.ckpt classifier=LENET_RUN/checkpoints/last.ckpt
    dlfound guided ckpt_path=... classifier=... guidance=0,1,3 sampler=ddim steps=50 n=1000

Draws n samples, cycling through the classes, for each guidance scale listed, and prints one JSON line each: the
share the classifier labels as requested, per class too, and the classifier's accuracy on the real test images
for reference. Options (key=value):
  ckpt_path=PATH    the conditional generative model's checkpoint (model=cvae, cgan, model.conditional=true)
  classifier=PATH   a dlfound classifier's checkpoint, trained on the same data
  n=1000            samples per guidance scale
  guidance=W1,W2    classifier-free guidance scales (diffusion models only); default: the run's task.guidance
  sampler=NAME      ddpm or ddim (diffusion models); default: the run's task.sampler
  steps=K           denoising steps
  seed=0            every scale samples from the same seed
  device=auto       cpu, cuda or auto
"""

from dlfound.errors import ConfigError, DlfoundError
from dlfound.runs.options import Option, parse_options, print_help_if_asked

USAGE = (
    "dlfound guided ckpt_path=PATH classifier=PATH [n=1000] [guidance=W1,W2,...] [sampler=NAME] [steps=K] "
    "[seed=0] [device=auto]"
)
OPTIONS = {
    "ckpt_path": Option(required=True),
    "classifier": Option(required=True),
    "n": Option(1000, int, minimum=1),
    "guidance": Option(None),
    "sampler": Option(None),
    "steps": Option(None, int, minimum=1),
    "seed": Option(0, int),
    "device": Option("auto"),
}


def guidance_scales(text: str | None) -> list[float | None]:
    if text is None:
        return [None]
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        raise ConfigError(f"guidance={text}: give numbers separated by commas, e.g. guidance=0,1,3") from None


def main(argv: list[str]) -> None:
    if print_help_if_asked(argv, __doc__):
        return
    import json

    from dlfound.runs.console import fail

    try:
        options, _ = parse_options(argv, OPTIONS, "guided", USAGE)
        scales = guidance_scales(options["guidance"])
        from dlfound.runs.build import load_feature_extractor, load_generative
        from dlfound.runs.generative import requested_class_shares
        from dlfound.runs.options import resolve_device

        device = resolve_device(options["device"])
        task, datamodule = load_generative(options["ckpt_path"], device)
        if not task.num_classes:
            raise ConfigError(
                f"{options['ckpt_path']} holds an unconditional model: there is no requested class to "
                "check. Give a conditional one (model=cvae, cgan, model.conditional=true)"
            )
        classifier = load_feature_extractor(options["classifier"]).to(device)
        for shares in requested_class_shares(
            task,
            datamodule,
            classifier,
            options["n"],
            scales,
            options["sampler"],
            options["steps"],
            options["seed"],
            device,
        ):
            print(json.dumps({"samples": options["ckpt_path"], **shares}), flush=True)
    except DlfoundError as err:
        fail(f"{str(err).rstrip('. ')}.")
