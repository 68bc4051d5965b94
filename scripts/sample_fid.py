"""FID and KID of any generative checkpoint (VAE, flow, GAN) against its test set, on pluggable features.

    python scripts/sample_fid.py ckpt_path=RUN/checkpoints/last.ckpt features=LENET_RUN/checkpoints/best.ckpt
    python scripts/sample_fid.py reference=mnist features=LENET.ckpt      # the floor: training vs test images

Options (key=value): n=10000 (samples and test images), temperature=1.0, seed=0, device=auto,
features=PATH.ckpt | inception:PATH | pixels. Prints one JSON line. With a dlfound classifier's features the
numbers compare only with others measured on the same checkpoint, never with published Inception FIDs.
"""

import json
import sys

import torch


def main(args: list[str]) -> None:
    from omegaconf import OmegaConf

    from dlfound.commands.options import Option, parse_options, resolve_device
    from dlfound.commands.sample import load_generative
    from dlfound.errors import DlfoundError
    from dlfound.metrics.sample_quality import features_of, score_features
    from dlfound.runs.build import compose, instantiate_section, load_feature_extractor
    from dlfound.runs.console import fail

    options = {
        "ckpt_path": Option(),
        "reference": Option(),
        "features": Option("pixels"),
        "n": Option(10000, int, minimum=2),
        "temperature": Option(1.0, float, above=0),
        "seed": Option(0, int),
        "device": Option("auto"),
    }
    try:
        kv, _ = parse_options(args, options, "sample_fid", "see the top of scripts/sample_fid.py")
        n = kv["n"]
        device = resolve_device(kv["device"])
        torch.manual_seed(kv["seed"])
        extractor = load_feature_extractor(kv["features"]).to(device)
        if kv["reference"]:
            cfg = compose([f"data={kv['reference']}", "hydra.runtime.output_dir=."])
            datamodule = instantiate_section({"data": OmegaConf.to_container(cfg.data, resolve=True)}, "data")
            train_x, _ = datamodule.load(train=True)
            fake = train_x[torch.randperm(len(train_x))[:n]].float() / 255
            source = f"{kv['reference']} training images"
        else:
            if not kv["ckpt_path"]:
                raise DlfoundError("give ckpt_path=GENERATIVE.ckpt, or reference=DATASET for the floor")
            task, datamodule = load_generative(kv["ckpt_path"], device)
            temperature = kv["temperature"]
            with torch.no_grad():
                chunks, made = [], 0
                while made < n:
                    m = min(500, n - made)
                    y = torch.arange(made, made + m, device=device) % task.num_classes if task.num_classes else None
                    chunks.append(task.sample(m, temperature=temperature, y=y).cpu())
                    made += m
            fake = torch.cat(chunks)
            source = kv["ckpt_path"]
        test_x, _ = datamodule.load(train=False)
        real = test_x[:n].float() / 255 if test_x.dtype == torch.uint8 else test_x[:n].float()
        scores = score_features(features_of(extractor, real), features_of(extractor, fake))
        result = {
            "samples": source,
            "n_real": len(real),
            "n_fake": len(fake),
            "features": kv["features"],
            "fid": scores["fid"],
            "kid": scores["kid"],
        }
    except DlfoundError as err:
        fail(f"sample_fid: {err}. Usage: see the top of scripts/sample_fid.py")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
