"""The empirical neural tangent kernel of any network, through torch.func.

For a network f(x; theta) with O outputs, the empirical NTK (Jacot, Gabriel & Hongler 2018) is

    Theta(x, x')_{o o'} = <df_o(x)/dtheta, df_o'(x')/dtheta> = J(x) J(x')^T,

the kernel that drives gradient descent in function space: d f(x)/dt = -eta * Theta(x, X) dL/df(X). `empirical_ntk`
computes the per-example Jacobians J [N, O, P] with `vmap(jacrev(functional_call))` in chunks of inputs and
contracts them: the full kernel [N1, N2, O, O], or its trace over outputs [N1, N2] (sum_o J_o(x) J_o(x')^T, the
default; for one output it is the kernel itself). The network runs in eval mode (batch norm uses its running
statistics, dropout is off), one example at a time.

The Jacobians are held in memory whole, so the request is sized first: `ntk_bytes` estimates it and
`empirical_ntk` refuses with a ConfigError naming the size and how to shrink it before allocating anything.
"""

import os
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from dlfound.errors import ConfigError

GIB = 2**30


def split_parameters(model: nn.Module, names: Sequence[str] | None = None):
    """(differentiated, fixed): the trainable parameters named in `names` (every one when None; a name also
    selects the parameters under it, e.g. "readout" for readout.weight and readout.bias) detached, and every other
    parameter and buffer detached, as the dicts `functional_call` takes."""
    params = dict(model.named_parameters())
    if names is None:
        chosen = [k for k, p in params.items() if p.requires_grad]
    else:
        chosen = [k for k in params if any(k == n or k.startswith(n + ".") for n in names)]
        if not chosen:
            raise ConfigError(
                f"params={list(names)} names none of the model's parameters; choose among {', '.join(params)}"
            )
    fixed = {k: v.detach() for k, v in [*params.items(), *model.named_buffers()] if k not in chosen}
    return {k: params[k].detach() for k in chosen}, fixed


def available_bytes(device: torch.device) -> int:
    """Free memory on `device`: CUDA's free memory, or the host's MemAvailable."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def ntk_bytes(n1: int, n2: int | None, outputs: int, num_params: int, itemsize: int = 4, trace: bool = True) -> int:
    """The memory `empirical_ntk` holds at its peak: the Jacobians of both input sets (N * O * P numbers each; one
    set when x2 is x1) and the kernel (N1 * N2, times O^2 untraced)."""
    jacobians = (n1 + (n2 or 0)) * outputs * num_params
    kernel = n1 * (n2 or n1) * (1 if trace else outputs * outputs)
    return (jacobians + kernel) * itemsize


def human_size(n_bytes: float) -> str:
    """GiB, or MiB and KiB for requests too small to show in GiB."""
    for unit, size in (("GiB", GIB), ("MiB", 2**20)):
        if n_bytes >= 0.1 * size:
            return f"{n_bytes / size:.2f} {unit}"
    return f"{n_bytes / 1024:.2f} KiB"


def check_size(
    n1: int,
    n2: int | None,
    outputs: int,
    num_params: int,
    itemsize: int,
    trace: bool,
    device: torch.device,
    max_gib: float | None,
) -> None:
    """Refuse a kernel larger than `max_gib` (default: half the free memory of `device`), saying how to shrink it."""
    need = ntk_bytes(n1, n2, outputs, num_params, itemsize, trace)
    limit = max_gib * GIB if max_gib is not None else available_bytes(device) / 2
    if need <= limit:
        return
    where = f"max_gib={max_gib:g}" if max_gib is not None else f"half the free memory of {device}"
    inputs = f"{n1} x {n2} inputs" if n2 else f"{n1} inputs"
    raise ConfigError(
        f"this empirical NTK request needs about {human_size(need)} ({inputs}, {outputs} outputs, {num_params:,} "
        f"parameters: Jacobians of {n1 + (n2 or 0)} x {outputs} x {num_params:,} numbers), more than the "
        f"{human_size(limit)} allowed ({where}). Shrink it: fewer inputs (a smaller probe batch, "
        f"callbacks.ntk_monitor.probe_size), a subset of the parameters (params=[...], e.g. only the last layer), "
        f"the trace over outputs (trace=True) if you asked for the full kernel, or a smaller model; or raise max_gib "
        f"if the memory is there"
    )


def jacobian(model: nn.Module, params: dict, fixed: dict, x: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """Per-example Jacobians [N, O, P] of the flattened outputs with respect to `params` (concatenated in their
    order), `chunk` examples per vmap call."""

    def f(p, xi):
        return functional_call(model, {**fixed, **p}, (xi.unsqueeze(0),)).reshape(-1)

    jac_fn = vmap(jacrev(f), in_dims=(None, 0))
    blocks = []
    for start in range(0, len(x), chunk):
        jac = jac_fn(params, x[start : start + chunk])
        n = min(chunk, len(x) - start)
        blocks.append(torch.cat([j.reshape(n, j.shape[1], -1) for j in jac.values()], dim=2))
    return torch.cat(blocks)


def empirical_ntk(
    model: nn.Module,
    x1: torch.Tensor,
    x2: torch.Tensor | None = None,
    *,
    params: Sequence[str] | None = None,
    trace: bool = True,
    chunk: int = 64,
    max_gib: float | None = None,
) -> torch.Tensor:
    """Theta(x1, x2) = J(x1) J(x2)^T of `model` at its current parameters: [N1, N2] summed over outputs
    (`trace=True`) or [N1, N2, O, O]. `params` restricts theta to some parameters (names or module prefixes);
    `x2=None` is x1. Raises ConfigError before allocating when the Jacobians would not fit (`check_size`)."""
    diff, fixed = split_parameters(model, params)
    num_params = sum(p.numel() for p in diff.values())
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = model(x1[:1]).numel()
        itemsize = next(iter(diff.values())).element_size()
        check_size(len(x1), None if x2 is None else len(x2), outputs, num_params, itemsize, trace, x1.device, max_gib)
        j1 = jacobian(model, diff, fixed, x1, chunk)
        j2 = j1 if x2 is None else jacobian(model, diff, fixed, x2, chunk)
    finally:
        model.train(was_training)
    if trace:
        return torch.einsum("aop,bop->ab", j1, j2)
    return torch.einsum("aop,bqp->aboq", j1, j2)
