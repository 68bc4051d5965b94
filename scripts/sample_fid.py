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
    from dlfound.arguments import parse_key_values
    from dlfound.console import fail
    from dlfound.errors import DlfoundError
    from dlfound.sample import load_generative
    from dlfound.sample_quality import (features_of, frechet_distance, kernel_inception_distance,
                                        load_feature_extractor)

    try:
        kv = parse_key_values(args, "sample_fid")
        n, seed = int(kv.get("n", 10000)), int(kv.get("seed", 0))
        device = kv.get("device", "auto")
        device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        torch.manual_seed(seed)
        extractor = load_feature_extractor(kv.get("features")).to(device)
        if "reference" in kv:
            from hydra import compose, initialize_config_dir
            from hydra.utils import instantiate
            from omegaconf import OmegaConf

            from dlfound.paths import config_dir

            with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
                cfg = compose("train", overrides=[f"data={kv['reference']}", "hydra.runtime.output_dir=."])
            datamodule = instantiate(OmegaConf.to_container(cfg.data, resolve=True), _convert_="all")
            train_x, _ = datamodule.load(train=True)
            fake = train_x[torch.randperm(len(train_x))[:n]].float() / 255
            source = f"{kv['reference']} training images"
        else:
            task, datamodule = load_generative(kv["ckpt_path"], device)
            temperature = float(kv.get("temperature", 1.0))
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
        f_real, f_fake = features_of(extractor, real), features_of(extractor, fake)
        result = {"samples": source, "n_real": len(real), "n_fake": len(fake), "features": kv.get("features", "pixels"),
                  "fid": frechet_distance(f_real, f_fake), "kid": kernel_inception_distance(f_real, f_fake)}
    except (DlfoundError, KeyError, ValueError) as err:
        fail(f"sample_fid: {err}. Usage: see the top of scripts/sample_fid.py")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
