"""The empirical NTK of a wide one-hidden-layer ReLU network against its analytic infinite-width limit.

At initialisation in the NTK parameterisation, the empirical kernel J J^T of `dlfound.models.ntk_mlp` converges
to the arc-cosine-kernel formula of `dlfound.ops.ntk.analytic` as the width n grows (Jacot et al. 2018), with
fluctuations of order n^(-1/2) (each seed's kernel is an average over n random hidden units). For each width the
script draws `--seeds` networks and reports the relative Frobenius error ||K_emp - K_analytic||_F / ||K_analytic||_F
of each seed's kernel (mean and max over seeds) and of the seed-averaged kernel (an average over seeds x n hidden
units, so its error is that of a network seeds times wider). Target: < 1 % at width 4,096.

    python scripts/ntk_kernel_check.py --widths 256 1024 4096 --seeds 8 --dim 2 --points 64
"""

import argparse
import json
import time

import torch

from dlfound.models import ntk_mlp
from dlfound.ops.ntk import analytic_ntk, empirical_ntk


def relative_error(k: torch.Tensor, reference: torch.Tensor) -> float:
    return (torch.linalg.matrix_norm(k.double() - reference) / torch.linalg.matrix_norm(reference)).item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--dim", type=int, default=2, help="input dimension")
    parser.add_argument("--points", type=int, default=64, help="inputs, uniform in [-1, 1]^dim (seed 1234)")
    parser.add_argument("--weight-std", type=float, default=1.0)
    parser.add_argument("--bias-std", type=float, default=1.0)
    args = parser.parse_args()

    x = torch.rand(args.points, args.dim, generator=torch.Generator().manual_seed(1234)) * 2 - 1
    print(f"{'width':>6} {'mean error per seed':>20} {'max per seed':>13} {'error of seed mean':>19} {'s':>6}")
    for width in args.widths:
        started = time.time()
        errors, kernels = [], []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            net = ntk_mlp(
                in_channels=args.dim, num_classes=1, width=width, weight_std=args.weight_std, bias_std=args.bias_std
            )
            k = empirical_ntk(net, x).double()
            reference = analytic_ntk(net, x)
            errors.append(relative_error(k, reference))
            kernels.append(k)
        mean_error = relative_error(torch.stack(kernels).mean(0), reference)
        row = {
            "width": width,
            "seeds": args.seeds,
            "error_mean": sum(errors) / len(errors),
            "error_max": max(errors),
            "error_of_mean_kernel": mean_error,
        }
        print(
            f"{width:>6} {row['error_mean']:>19.2%} {row['error_max']:>13.2%} {mean_error:>19.2%} "
            f"{time.time() - started:>6.1f}"
        )
        print(json.dumps(row))


if __name__ == "__main__":
    main()
