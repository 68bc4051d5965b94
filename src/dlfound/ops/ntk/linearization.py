"""The network linearised around its initial parameters, and how far the trained network is from it.

Lee, Xiao, Schoenholz, Bahri, Novak, Sohl-Dickstein & Pennington (2019) show that a wide network trained by
gradient descent stays close to its first-order Taylor expansion in the parameters,

    f_lin(x; theta_t) = f(x; theta_0) + J_0(x) (theta_t - theta_0),          J_0 = df/dtheta at theta_0,

the gap closing like width^(-1/2). Here f_lin is evaluated at the network's own parameters theta_t (not at those
of a separately trained linear model), so f - f_lin is the Taylor remainder along the path gradient descent took:
J_0 (theta_t - theta_0) is one forward-mode product (`torch.func.jvp`), with no Jacobian held in memory.
"""

import torch
from torch import nn
from torch.func import functional_call, jvp


def parameters_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the trainable parameters: theta at this moment."""
    return {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}


def linearized_output(
    model: nn.Module, theta0: dict[str, torch.Tensor], theta: dict[str, torch.Tensor], x: torch.Tensor
) -> torch.Tensor:
    """f_lin(x; theta) = f(x; theta_0) + J_0(x) (theta - theta_0), with the model's buffers as they are now."""
    fixed = {k: v.detach() for k, v in model.named_buffers()}
    tangent = {k: theta[k] - theta0[k] for k in theta0}

    def f(p):
        return functional_call(model, {**fixed, **p}, (x,))

    f0, jvp_out = jvp(f, (theta0,), (tangent,))
    return f0 + jvp_out


def linearization_distance(model: nn.Module, theta0: dict[str, torch.Tensor], x: torch.Tensor) -> float:
    """The root-mean-square distance sqrt(mean_{x, o} (f_o(x; theta_t) - f_lin,o(x; theta_t))^2) over the inputs
    `x` and outputs o, in the units of the outputs, at the model's current parameters theta_t (eval mode)."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            f_t = model(x)
            f_lin = linearized_output(model, theta0, parameters_of(model), x)
    finally:
        model.train(was_training)
    return (f_t - f_lin).pow(2).mean().sqrt().item()
