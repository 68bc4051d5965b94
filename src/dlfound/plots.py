"""Pictures of what a model learned (samples, densities, decision regions), as uint8 arrays [H, W, 3] ready for PNG files and TensorBoard.

Image grids come from torchvision's `make_grid`; scatter plots and density heat-maps of 2-D models are drawn
with Pillow alone (no plotting library needed). dlfound.image_files.write_picture saves them.
"""

from collections.abc import Callable

import numpy as np
import torch

# The viridis colour map at five anchors, interpolated linearly in between.
VIRIDIS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float64)
GRID_PADDING = 2


def image_grid(images: torch.Tensor, nrow: int = 8) -> np.ndarray:
    """[N, C, H, W] in [0, 1] -> one uint8 [H', W', 3] grid with `nrow` images per row and 2-pixel padding."""
    from torchvision.utils import make_grid

    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=GRID_PADDING, pad_value=1.0)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def grid_size(n: int, nrow: int, height: int, width: int) -> tuple[int, int]:
    """(width, height) in pixels of `image_grid` for n images: what a PNG written from it measures."""
    cols = min(nrow, n)
    rows = -(-n // nrow)
    return cols * (width + GRID_PADDING) + GRID_PADDING, rows * (height + GRID_PADDING) + GRID_PADDING


def square_limits(*point_sets: torch.Tensor | None, margin: float = 0.1) -> tuple[float, float, float, float]:
    """A square window around all the points (robust to a few far outliers)."""
    pts = torch.cat([p.detach().float().cpu().reshape(-1, 2) for p in point_sets if p is not None and len(p)])
    lo = torch.quantile(pts, 0.001, dim=0)
    hi = torch.quantile(pts, 0.999, dim=0)
    center = (lo + hi) / 2
    half = float((hi - lo).max()) / 2 * (1 + margin) + 1e-6
    return float(center[0]) - half, float(center[0]) + half, float(center[1]) - half, float(center[1]) + half


def _to_pixels(points: torch.Tensor, limits, size: int) -> np.ndarray:
    x0, x1, y0, y1 = limits
    p = points.detach().float().cpu().numpy().reshape(-1, 2)
    px = (p[:, 0] - x0) / (x1 - x0) * (size - 1)
    py = (1 - (p[:, 1] - y0) / (y1 - y0)) * (size - 1)  # y grows upwards
    return np.stack([px, py], 1)


def scatter_plot(
    samples: torch.Tensor,
    reference: torch.Tensor | None = None,
    limits=None,
    size: int = 512,
    centers: torch.Tensor | None = None,
) -> np.ndarray:
    """Samples (blue) over reference data (grey), and optional mode centres (red crosses), in a square window."""
    from PIL import Image, ImageDraw

    limits = limits or square_limits(samples, reference)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    x0, x1, y0, y1 = limits
    if x0 < 0 < x1:  # axes through the origin
        ox = _to_pixels(torch.tensor([[0.0, 0.0]]), limits, size)[0]
        draw.line([(ox[0], 0), (ox[0], size)], fill=(225, 225, 225))
        draw.line([(0, ox[1]), (size, ox[1])], fill=(225, 225, 225))
    for points, colour, radius in ((reference, (170, 170, 170), 1.5), (samples, (31, 119, 180), 1.5)):
        if points is None:
            continue
        for px, py in _to_pixels(points, limits, size):
            draw.ellipse([px - radius, py - radius, px + radius, py + radius], fill=colour)
    if centers is not None:
        for px, py in _to_pixels(centers, limits, size):
            draw.line([(px - 5, py - 5), (px + 5, py + 5)], fill=(214, 39, 40), width=2)
            draw.line([(px - 5, py + 5), (px + 5, py - 5)], fill=(214, 39, 40), width=2)
    draw.rectangle([0, 0, size - 1, size - 1], outline=(120, 120, 120))
    return np.asarray(image)


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> viridis RGB uint8."""
    v = np.clip(values, 0, 1) * (len(VIRIDIS) - 1)
    low = np.floor(v).astype(int).clip(0, len(VIRIDIS) - 2)
    frac = (v - low)[..., None]
    return (VIRIDIS[low] * (1 - frac) + VIRIDIS[low + 1] * frac).round().astype(np.uint8)


@torch.no_grad()
def density_plot(
    log_prob: Callable[[torch.Tensor], torch.Tensor], limits, size: int = 256, device: torch.device | str = "cpu"
) -> np.ndarray:
    """Heat-map of exp(log_prob) over a size x size grid of the window `limits` (viridis, bright = dense)."""
    x0, x1, y0, y1 = limits
    xs = torch.linspace(x0, x1, size)
    ys = torch.linspace(y1, y0, size)  # top row is the largest y
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2).to(device)
    logp = torch.cat([log_prob(chunk) for chunk in grid.split(8192)]).float().cpu().reshape(size, size)
    density = torch.nan_to_num(logp, nan=-1e30, neginf=-1e30).exp()
    return colormap((density / density.max().clamp_min(1e-30)).numpy())


def side_by_side(*images: np.ndarray, gap: int = 8) -> np.ndarray:
    """Images of any heights next to each other on white, top-aligned."""
    height = max(i.shape[0] for i in images)
    width = sum(i.shape[1] for i in images) + gap * (len(images) - 1)
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for i in images:
        canvas[: i.shape[0], x : x + i.shape[1]] = i
        x += i.shape[1] + gap
    return canvas


# Class colours (matplotlib's tab10).
PALETTE = np.array(
    [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ],
    dtype=np.uint8,
)


@torch.no_grad()
def decision_regions(
    predict: Callable[[torch.Tensor], torch.Tensor],
    points: torch.Tensor,
    labels: torch.Tensor,
    limits=None,
    size: int = 256,
) -> np.ndarray:
    """The class a 2-D classifier `predict`s at every pixel of the window (pale colours), the labelled points on
    top in the full colour of their class."""
    from PIL import Image, ImageDraw

    limits = limits or square_limits(points)
    x0, x1, y0, y1 = limits
    xs = torch.linspace(x0, x1, size)
    ys = torch.linspace(y1, y0, size)  # top row is the largest y
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1).reshape(-1, 2)
    classes = predict(grid).cpu().reshape(size, size).numpy() % len(PALETTE)
    image = Image.fromarray((PALETTE[classes] * 0.3 + 255 * 0.7).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for (px, py), label in zip(_to_pixels(points, limits, size), labels.cpu().numpy()):
        colour = tuple(int(v) for v in PALETTE[label % len(PALETTE)])
        draw.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=colour, outline=(60, 60, 60))
    draw.rectangle([0, 0, size - 1, size - 1], outline=(120, 120, 120))
    return np.asarray(image)


def curve_plot(x: torch.Tensor, curves: list[torch.Tensor], size: int = 384) -> np.ndarray:
    """Curves y(x) over one input (the first grey: the target; then blue, orange, ...), x sorted, in one window."""
    from PIL import Image, ImageDraw

    order = x.flatten().argsort()
    xs = x.flatten()[order].double()
    ys = [c.flatten()[order].double() for c in curves]
    lo, hi = min(float(y.min()) for y in ys), max(float(y.max()) for y in ys)
    pad = 0.05 * (hi - lo or 1.0)
    limits = (float(xs[0]), float(xs[-1]) + 1e-12, lo - pad, hi + pad)
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    colours = [(150, 150, 150), *(tuple(int(v) for v in c) for c in PALETTE)]
    for y, colour, width in zip(ys, colours, [5] + [2] * len(ys)):
        points = _to_pixels(torch.stack([xs, y], 1), limits, size)
        draw.line([tuple(p) for p in points], fill=colour, width=width)
    draw.rectangle([0, 0, size - 1, size - 1], outline=(120, 120, 120))
    return np.asarray(image)


def surface_plots(values: list[torch.Tensor], side: int, scale: int = 2) -> np.ndarray:
    """Functions on a side x side grid (cartesian order, first coordinate slowest) as viridis images side by side,
    all on the colour scale of the first (the target)."""
    lo, hi = float(values[0].min()), float(values[0].max())
    images = []
    for v in values:
        # Grid rows run along the first coordinate; transpose so that x1 runs left to right, x2 upwards.
        picture = ((v.reshape(side, side).T.flip(0).double() - lo) / (hi - lo or 1.0)).numpy()
        images.append(np.kron(colormap(picture), np.ones((scale, scale, 1), dtype=np.uint8)))
    return side_by_side(*images)


def figure_pixels(fig) -> np.ndarray:
    """A matplotlib figure as a uint8 [H, W, 3] array; the figure is closed."""
    import matplotlib.pyplot as plt

    fig.canvas.draw()
    picture = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return picture
