"""Bicubic super-resolution on Set5 (and Set14): the check that dlfound's PSNR convention is the published one.

The SRCNN paper (Dong et al. 2014) reports bicubic PSNR on Set5 of 33.66 / 30.39 / 28.42 dB at x2 / x3 / x4.
Its convention, which every later SR paper kept: take the luma Y (MATLAB rgb2ycbcr, rounded to 8 bits), crop
it to a multiple of the scale, shrink with MATLAB imresize bicubic and enlarge back, and measure PSNR on Y
with `scale` pixels shaved off each border. This script runs exactly that with dlfound's own imresize, psnr
and ssim, and prints the table next to the published row.

    python scripts/restoration_bicubic_baseline.py [--root DIR] [--sets Set5 Set14]

DIR defaults to $DLFOUND_DATA/restoration (or ../shared/data/restoration in a dlfound checkout).
"""

import argparse
import os
import sys
from pathlib import Path

PUBLISHED = {"Set5": {2: 33.66, 3: 30.39, 4: 28.42}, "Set14": {2: 30.24, 3: 27.55, 4: 26.00}}


def default_root() -> Path:
    if os.environ.get("DLFOUND_DATA"):
        return Path(os.environ["DLFOUND_DATA"]) / "restoration"
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "restoration"


def bicubic_table(root: Path, sets: list[str], scales=(2, 3, 4)) -> dict:
    from dlfound.data.degradations import bicubic_degrade
    from dlfound.data.restoration import list_images, read_image
    from dlfound.metrics.restoration import psnr, ssim
    from dlfound.ops.colour import quantize, rgb_to_y
    from dlfound.ops.resize import modcrop

    table = {}
    for name in sets:
        files = list_images(root / name)
        for scale in scales:
            p, s = [], []
            for path in files:
                clean = read_image(path, "rgb").float().div(255)[None]
                # Y rounded to 8 bits, as MATLAB's rgb2ycbcr returns for uint8 images.
                y = quantize(rgb_to_y(modcrop(clean, scale)))
                up = bicubic_degrade(y, scale, round_lr=False)
                p.append(psnr(up, y, shave=scale).item())
                s.append(ssim(up, y, shave=scale).item())
            table[(name, scale)] = (sum(p) / len(p), sum(s) / len(s), len(files))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=default_root())
    parser.add_argument("--sets", nargs="+", default=["Set5", "Set14"])
    args = parser.parse_args()
    if not args.root.is_dir():
        print(f"no restoration data at {args.root}; pass --root DIR holding Set5/ and Set14/", file=sys.stderr)
        return 2
    table = bicubic_table(args.root, args.sets)
    print(f"{'set':8s} {'scale':>5s} {'images':>6s} {'PSNR (Y)':>9s} {'published':>9s} {'diff':>6s} {'SSIM':>7s}")
    worst = 0.0
    for (name, scale), (p, s, n) in table.items():
        ref = PUBLISHED.get(name, {}).get(scale)
        diff = p - ref if ref is not None else float("nan")
        if ref is not None and name == "Set5":
            worst = max(worst, abs(diff))
        ref_text = f"{ref:9.2f}" if ref is not None else f"{'-':>9s}"
        print(f"{name:8s} {'x' + str(scale):>5s} {n:6d} {p:9.2f} {ref_text} {diff:+6.2f} {s:7.4f}")
    print(f"largest |difference| from the published Set5 row: {worst:.3f} dB")
    return 0 if worst <= 0.1 else 1


if __name__ == "__main__":
    sys.exit(main())
