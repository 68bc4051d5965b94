"""Kernel regression with the neural tangent kernel: what an infinitely long gradient descent on the squared
error makes of a network in the NTK regime.

Under gradient flow on (1/2) ||f(X) - Y||^2 the linearised network's outputs evolve as
f_t(X) = Y + e^(-eta Theta t) (f_0(X) - Y) (Lee et al. 2019, eq. 9), and at any input x, as t -> infinity,

    f_inf(x) = f_0(x) + Theta(x, X) Theta(X, X)^-1 (Y - f_0(X)).

With the empirical kernel at initialisation and the network's own initial outputs f_0 this is exactly where the
linearised network converges; with the analytic kernel and f_0 = 0 it is the mean prediction of the infinite-width
ensemble (Jacot et al. 2018). The training points are interpolated (up to `ridge`).
"""

import torch


def ntk_regression(
    k_test_train: torch.Tensor,
    k_train_train: torch.Tensor,
    y_train: torch.Tensor,
    f0_test: torch.Tensor | None = None,
    f0_train: torch.Tensor | None = None,
    ridge: float = 0.0,
) -> torch.Tensor:
    """f_inf(x) for the test inputs: [M, O] from Theta(x, X) [M, N], Theta(X, X) [N, N], the targets Y [N, O],
    and optionally the initial outputs f_0(x) [M, O] and f_0(X) [N, O]. The same kernel serves every output (the
    trace kernel, or a network with one output). `ridge` adds ridge * mean(diag) to the diagonal, for kernels that
    are numerically singular; solved in float64 by Cholesky when it succeeds, else by least squares."""
    dtype = y_train.dtype
    k_tt = k_train_train.double()
    if ridge:
        k_tt = k_tt + ridge * k_tt.diagonal().mean() * torch.eye(len(k_tt), dtype=k_tt.dtype, device=k_tt.device)
    residual = y_train.double() - (f0_train.double() if f0_train is not None else 0.0)
    chol, info = torch.linalg.cholesky_ex(k_tt)
    if int(info) == 0:
        alpha = torch.cholesky_solve(residual, chol)
    else:
        alpha = torch.linalg.lstsq(k_tt, residual).solution
    prediction = k_test_train.double() @ alpha
    if f0_test is not None:
        prediction = prediction + f0_test.double()
    return prediction.to(dtype)
