"""The panels of `dlfound figure scaling`: a language model's loss against its size and against the tokens it
trained on, log-log, with least-squares power-law fits and the published exponents beside them.

Kaplan et al. 2020 ("Scaling laws for neural language models") fit L(N) = (N_c / N)^alpha_N over non-embedding
parameters N (alpha_N ~ 0.076) and L(D) = (D_c / D)^alpha_D over tokens D (alpha_D ~ 0.095); Hoffmann et al. 2022
(Chinchilla) fit L = E + A / N^alpha + B / D^beta (alpha ~ 0.34, beta ~ 0.28), whose exponents describe the
reducible part L - E only. Our fit is Kaplan's form, log L = -alpha log x + c, on the mean over seeds of each point.

A `power_law` panel draws, for every figure line that `select` admits (one line per setting of a sweep, grouped
by the sweep: its `group`), the metric against
- `x: non_embedding_params`: the GPT's parameters without its token and position embeddings, counted on the
  model its config builds (Kaplan's N, nearly 12 n_layer n_embd^2), or
- `x: tokens`: the tokens it trained on, global_step x batch_size x block_size x accumulate_grad_batches.
`reference` maps a label to a published exponent: each is drawn as a dotted line of that slope through the middle
of the first fitted group, so the slopes compare by eye.
"""

import fnmatch
import math

from dlfound.runs.records import Row, log_log_fit


def non_embedding_params(run) -> int:
    """Kaplan's N for a run's GPT: all parameters but the token and position embeddings (the head is tied)."""
    import torch

    from dlfound.models.gpt import GPT

    sizes = {key: int(run.value(f"model.{key}") or default) for key, default in (("n_layer", 4), ("n_head", 4))}
    with torch.device("meta"):  # counted without allocating: the paper budget's models are large
        net = GPT(1, 1, n_embd=int(run.value("model.n_embd") or 128), bias=run.value("model.bias") == "True", **sizes)
    embeddings = {id(net.transformer.wte.weight), id(net.transformer.wpe.weight)}
    return sum(p.numel() for p in net.parameters() if id(p) not in embeddings)


def tokens_trained(run) -> int:
    per_step = int(run.value("data.batch_size")) * int(run.value("data.block_size"))
    return int(run.results.get("global_step") or 0) * per_step * int(run.value("trainer.accumulate_grad_batches") or 1)


X_AXES = {
    "non_embedding_params": (non_embedding_params, "non-embedding parameters N"),
    "tokens": (tokens_trained, "training tokens D"),
}


def points_by_group(panel: dict, lines: list) -> dict[str, list[tuple[float, float, float]]]:
    """{group: [(x, mean, std over seeds)]}, sorted by x, for the lines `select` admits."""
    measure = X_AXES[panel["x"]][0]
    groups: dict[str, list[tuple[float, float, float]]] = {}
    for line in lines:
        if panel.get("select") and not fnmatch.fnmatchcase(line.label, panel["select"]):
            continue
        mean, std, _ = Row(line.runs, {}).stats(panel["metric"])
        if mean is not None and mean > 0:
            groups.setdefault(line.group, []).append((float(measure(line.runs[0])), mean, std or 0.0))
    return {group: sorted(points) for group, points in groups.items()}


def draw_power_law(ax, panel: dict, lines: list, colors) -> dict[str, float]:
    """Each group's points and its fitted power law; returns {group: alpha}, L ~ x^-alpha."""
    exponents, anchor = {}, None
    for i, (group, points) in enumerate(points_by_group(panel, lines).items()):
        xs, means, stds = zip(*points, strict=True)
        color = colors[i % len(colors)]
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, ls="none", color=color, label=group)
        if len(set(xs)) < 2:
            continue
        slope, intercept = log_log_fit(xs, means)
        exponents[group] = -slope
        ax.plot(
            xs,
            [math.exp(intercept) * x**slope for x in xs],
            "-",
            color=color,
            label=f"{group}, fit: alpha = {-slope:.3f}",
        )
        if anchor is None:
            middle = math.sqrt(xs[0] * xs[-1])
            anchor = (xs[0], xs[-1], middle, math.exp(intercept) * middle**slope)
    if anchor is not None:
        low, high, middle, at_middle = anchor
        for j, (label, alpha) in enumerate((panel.get("reference") or {}).items()):
            ax.plot(
                [low, high],
                [at_middle * (x / middle) ** -alpha for x in (low, high)],
                ":" if j % 2 == 0 else "-.",
                color="grey",
                label=f"{label}: alpha = {alpha}",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(X_AXES[panel["x"]][1])
    ax.set_ylabel(panel.get("ylabel") or panel["metric"])
    return exponents
