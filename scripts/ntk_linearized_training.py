"""Lee et al. (2019), Section 2: a wide network trained by gradient descent against its linearisation trained by
its own gradient descent.

The linearised network f_lin(x; theta) = f(x; theta_0) + J_0(x) (theta - theta_0) is a linear model in theta;
trained with the same loss, learning rate and steps as the network, its parameters follow

    theta_{t+1} = theta_t - lr * J_0(X)^T dL/df_lin(X),

computed here with the Jacobians J_0 of the training and test inputs held explicitly (`dlfound.ops.ntk.empirical`).
For each width and seed the script trains both from the same theta_0 on the `ntk_width_sweep` problem (sin(x1)
sin(x2) on a 5 x 5 grid of [-pi, pi]^2, full-batch gradient descent on the mean squared error) and reports the
RMS gap |f_T - f_lin,T| on the training points and on the finer test grid, both training errors, and the gap's
log-log slope against the width
(Lee et al., Theorem 2.1: the gap is O(width^(-1/2)) uniformly in time).

    python scripts/ntk_linearized_training.py --widths 64 256 1024 4096 --seeds 3
"""

import argparse
import math
import time

import torch
import torch.nn.functional as F

from dlfound.data.function import TARGETS, grid
from dlfound.models import ntk_mlp
from dlfound.ops.ntk.empirical import jacobian, split_parameters


def train_both(width: int, seed: int, x, y, x_test, lr: float, steps: int) -> tuple[float, ...]:
    torch.manual_seed(seed)
    net = ntk_mlp(in_channels=x.shape[1], num_classes=1, width=width)
    params, fixed = split_parameters(net)
    j_train = jacobian(net, params, fixed, x)[:, 0]  # [N, P]
    j_test = jacobian(net, params, fixed, x_test)[:, 0]
    with torch.no_grad():
        f0_train, f0_test = net(x), net(x_test)
    delta = torch.zeros(j_train.shape[1])  # theta - theta_0 of the linearised network
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    for _ in range(steps):
        loss = F.mse_loss(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        # The same step for the linear model: d/dtheta mean (f_lin - y)^2 = J_0^T 2 (f_lin - y) / N.
        f_lin = f0_train + (j_train @ delta)[:, None]
        delta -= lr * j_train.T @ (2 * (f_lin - y)[:, 0] / len(x))
    with torch.no_grad():
        gap_train = (net(x) - f0_train - (j_train @ delta)[:, None]).pow(2).mean().sqrt().item()
        gap_test = (net(x_test) - f0_test - (j_test @ delta)[:, None]).pow(2).mean().sqrt().item()
        loss_lin = F.mse_loss(f0_train + (j_train @ delta)[:, None], y).item()
        loss_net = F.mse_loss(net(x), y).item()
    return gap_train, gap_test, loss_net, loss_lin


def slope(xs, ys) -> float:
    lx, ly = [math.log(v) for v in xs], [math.log(v) for v in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048, 4096])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--steps", type=int, default=1000)
    args = parser.parse_args()

    x = grid(5, 2, -math.pi, math.pi)
    y = TARGETS["sin"](x)
    x_test = grid(21, 2, -math.pi, math.pi)
    rows = []
    print(f"{'width':>6} {'gap (train)':>12} {'gap (test)':>11} {'network mse':>12} {'lin. model mse':>15} {'s':>5}")
    for width in args.widths:
        started = time.time()
        results = [train_both(width, seed, x, y, x_test, args.lr, args.steps) for seed in range(args.seeds)]
        # Geometric means over the seeds, as the fit works on logarithms.
        row = [math.exp(sum(math.log(r[i]) for r in results) / len(results)) for i in range(4)]
        rows.append((width, *row))
        print(
            f"{width:>6} {row[0]:>12.3e} {row[1]:>11.3e} {row[2]:>12.3e} {row[3]:>15.3e} {time.time() - started:>5.1f}"
        )
    widths = [r[0] for r in rows]
    print(f"slope of the gap on the training points: {slope(widths, [r[1] for r in rows]):+.3f}")
    print(f"slope of the gap on the test grid:       {slope(widths, [r[2] for r in rows]):+.3f}  (Lee et al.: -0.5)")


if __name__ == "__main__":
    main()
