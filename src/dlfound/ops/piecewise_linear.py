"""The sup error of the best piecewise-linear interpolant with a given number of pieces: the approximation theory's
line for a one-hidden-layer ReLU network of one input, which is a continuous piecewise-linear function with one
kink per hidden unit (n units: n + 1 pieces).

The interpolant of f at knots a = t_0 < t_1 < ... < t_n = b errs on [t_j, t_j+1] by about h_j^2 |f''| / 8, so
equal knots give (b - a)^2 max|f''| / (8 n^2) and the best knots equalise the error of the pieces. We find them
as de Boor does ("A practical guide to splines", ch. XII): with e_j the measured sup error of piece j, the knots
are moved so that each piece holds an equal share of the integral of sqrt(e_j) / h_j (the local sqrt|f''|/8),
a few dozen times, keeping the best. The errors are measured on a dense grid, so the number is numerical, exact
to the grid's resolution.
"""

from collections.abc import Callable

import numpy as np
import torch


def interpolant_errors(f: Callable, knots: torch.Tensor, grid: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The sup error of the linear interpolant of f on each piece [knots[j], knots[j+1]], measured on `grid`."""
    piece = torch.bucketize(grid, knots[1:-1])  # which piece each grid point lies in
    left, right = knots[piece], knots[piece + 1]
    f_knots = f(knots)
    weight = (grid - left) / (right - left)
    line = f_knots[piece] * (1 - weight) + f_knots[piece + 1] * weight
    errors = torch.zeros(len(knots) - 1, dtype=grid.dtype)
    return errors.scatter_reduce(0, piece, (values - line).abs(), reduce="amax")


def best_interpolant_sup_error(
    f: Callable, pieces: int, low: float, high: float, points: int = 20_001, rounds: int = 60
) -> float:
    """The smallest sup error over [low, high] of a continuous piecewise-linear interpolant of f with `pieces`
    pieces found by equidistributing the knots (the module docstring); f maps a 1-D tensor to one of its size."""
    grid = torch.linspace(low, high, points, dtype=torch.float64)
    values = f(grid)
    knots = torch.linspace(low, high, pieces + 1, dtype=torch.float64)
    best = float("inf")
    for _ in range(rounds):
        errors = interpolant_errors(f, knots, grid, values)
        best = min(best, errors.max().item())
        widths = knots[1:] - knots[:-1]
        # The local density sqrt(e_j) / h_j, floored so that no piece where f is nearly straight collapses.
        density = errors.sqrt() / widths
        density = density.clamp_min(1e-3 * density.max().clamp_min(1e-300))
        mass = torch.cat([torch.zeros(1, dtype=grid.dtype), (density * widths).cumsum(0)])
        targets = torch.linspace(0, mass[-1].item(), pieces + 1, dtype=grid.dtype)
        moved = torch.from_numpy(np.interp(targets.numpy(), mass.numpy(), knots.numpy()))
        knots = 0.5 * (knots + moved)  # half-steps: the density depends on the knots, a full step can oscillate
        knots[0], knots[-1] = low, high
    return best
