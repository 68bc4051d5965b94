"""How often a classifier sees the requested class in a conditional generative model's samples: the check of
classifier-free guidance (Ho & Salimans 2022), or of any conditional VAE/GAN.

    python scripts/guided_accuracy.py ckpt_path=COND_RUN/checkpoints/last.ckpt classifier=LENET_RUN/checkpoints/last.ckpt
    python scripts/guided_accuracy.py ckpt_path=... classifier=... guidance=0,1,3 sampler=ddim steps=50 n=1000

Draws n samples, cycling through the classes, for each guidance scale listed (diffusion models; other families
take guidance= not at all), and prints one JSON line each: the share the classifier labels as requested, per class
too, and the classifier's accuracy on the real test images for reference. Options: n=1000, guidance (the run's
task.guidance), sampler, steps, seed=0, device=auto.
"""

import json
import sys

import torch


def main(args: list[str]) -> None:
    from dlfound.commands.options import Option, parse_options, resolve_device
    from dlfound.commands.sample import load_generative
    from dlfound.errors import ConfigError, DlfoundError
    from dlfound.runs.build import load_feature_extractor
    from dlfound.runs.console import fail

    options = {
        "ckpt_path": Option(required=True),
        "classifier": Option(required=True),
        "n": Option(1000, int, minimum=1),
        "guidance": Option(None),
        "sampler": Option(None),
        "steps": Option(None, int, minimum=1),
        "seed": Option(0, int),
        "device": Option("auto"),
    }
    try:
        kv, _ = parse_options(args, options, "guided_accuracy", "see the top of scripts/guided_accuracy.py")
        device = resolve_device(kv["device"])
        task, datamodule = load_generative(kv["ckpt_path"], device)
        if not task.num_classes:
            raise ConfigError(f"{kv['ckpt_path']} holds an unconditional model: there is no requested class to check")
        classifier = load_feature_extractor(kv["classifier"]).to(device)
        scales = [None] if kv["guidance"] is None else [float(w) for w in kv["guidance"].split(",")]
        test_x, test_y = datamodule.load(train=False)
        real = test_x[: kv["n"]].float() / 255 if test_x.dtype == torch.uint8 else test_x[: kv["n"]].float()
        reference = float((classifier.classify(real.to(device)).argmax(1).cpu() == test_y[: kv["n"]]).float().mean())
        for w in scales:
            torch.manual_seed(kv["seed"])
            if hasattr(task, "set_sampler"):
                task.set_sampler(kv["sampler"], kv["steps"], None, w)
            elif w is not None or kv["sampler"] or kv["steps"]:
                raise ConfigError("guidance=, sampler= and steps= apply to diffusion models")
            wanted = torch.arange(kv["n"]) % task.num_classes
            seen = []
            with torch.no_grad():
                for chunk in wanted.split(500):
                    samples = task.sample(len(chunk), y=chunk.to(device))
                    seen.append(classifier.classify(samples).argmax(1).cpu())
            hits = torch.cat(seen) == wanted
            per_class = [round(float(hits[wanted == k].float().mean()), 4) for k in range(task.num_classes)]
            print(
                json.dumps(
                    {
                        "samples": kv["ckpt_path"],
                        "n": kv["n"],
                        "sampling": getattr(task, "sampling", None),
                        "as_requested": round(float(hits.float().mean()), 4),
                        "per_class": per_class,
                        "classifier_on_test_images": round(reference, 4),
                    }
                )
            )
    except DlfoundError as err:
        fail(str(err))


if __name__ == "__main__":
    main(sys.argv[1:])
