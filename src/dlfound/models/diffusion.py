"""Noise-prediction and score networks for diffusion and score-based models: eps(x_t, t, y) or s(x, level, y).

- `DDPMUNet`: the U-Net of Ho, Jain & Abbeel (2020, "Denoising Diffusion Probabilistic Models", appendix B),
  after PixelCNN++: at each resolution `num_res_blocks` residual blocks (group norm, SiLU, 3x3 convs, the time
  embedding added between the convs, dropout), self-attention at the resolutions in `attention_resolutions`,
  strided-conv downsampling and nearest-neighbour upsampling, skip connections from every down block to its
  up block, and a zero-initialised output conv. The time step enters as the Transformer's sinusoidal embedding
  followed by a two-layer MLP. With `conditional=True` a learned class embedding is added to the time embedding;
  its extra last row is the "no class" token of classifier-free guidance (Ho & Salimans 2022).
- `ScoreMLP`: the same idea for vectors (2-D toy data): an MLP whose every hidden layer adds an embedding of the
  time step or noise level.

Both take `t` as a [B] tensor of (possibly fractional) steps or level indices and return a tensor shaped like x.
`data_shape` and `num_classes` say what they model, as the other generative families do.
"""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.models.layers import data_shape_of
from dlfound.models.registry import register_model


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """[B] -> [B, dim]: sin and cos of t at geometrically spaced frequencies 1 .. 1/max_period (Vaswani et al.)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


class TimeEmbedding(nn.Module):
    """Sinusoidal embedding of t, an MLP on it, plus a class embedding when conditional (row num_classes: none)."""

    def __init__(self, base_dim: int, dim: int, num_classes: int = 0):
        super().__init__()
        self.base_dim = base_dim
        self.mlp = nn.Sequential(nn.Linear(base_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.num_classes = num_classes
        self.classes = nn.Embedding(num_classes + 1, dim) if num_classes else None

    def forward(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        emb = self.mlp(timestep_embedding(t, self.base_dim))
        if self.classes is not None:
            if y is None:  # unconditional use of a conditional model: the null token
                y = torch.full((len(t),), self.num_classes, device=t.device, dtype=torch.long)
            emb = emb + self.classes(y)
        return emb


def group_norm(channels: int) -> nn.GroupNorm:
    """Ho et al. use 32 groups of their 128+ channels; narrower nets keep 4 channels per group."""
    return nn.GroupNorm(min(32, max(1, channels // 4)), channels)


class ResBlock(nn.Module):
    """h = conv(act(norm(x))); h += W emb; h = conv(dropout(act(norm(h)))); out = skip(x) + h."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, out_ch)
        self.norm2, self.dropout = group_norm(out_ch), nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity, as in Ho et al.'s code
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over the H x W positions, with a residual connection."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)  # [B, HW, C] each
        out = F.scaled_dot_product_attention(q, k, v).transpose(-1, -2).reshape(b, c, h, w)
        return x + self.proj(out)


class Level(nn.Module):
    """The residual blocks (each followed by attention at the chosen resolutions) of one U-Net level."""

    def __init__(self, channels_in: Sequence[int], out_ch: int, emb_dim: int, dropout: float, attention: bool):
        super().__init__()
        self.blocks = nn.ModuleList(ResBlock(c, out_ch, emb_dim, dropout) for c in channels_in)
        self.attns = nn.ModuleList(AttentionBlock(out_ch) if attention else nn.Identity() for _ in channels_in)


class DDPMUNet(nn.Module):
    """eps_theta(x_t, t, y): the DDPM U-Net (see the module docstring). Images are expected in [-1, 1]."""

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 0,
        conditional: bool = False,
        base_channels: int = 64,
        channel_mults: Sequence[int] = (1, 2, 2),
        num_res_blocks: int = 2,
        attention_resolutions: Sequence[int] = (7,),
        dropout: float = 0.1,
    ):
        super().__init__()
        if image_size % 2 ** (len(channel_mults) - 1):
            raise ValueError(
                f"image_size {image_size} cannot be halved {len(channel_mults) - 1} times "
                f"(channel_mults={list(channel_mults)}); use fewer levels"
            )
        self.data_shape = data_shape_of(in_channels, image_size)
        self.num_classes = num_classes if conditional else 0
        emb_dim = 4 * base_channels
        self.embed = TimeEmbedding(base_channels, emb_dim, self.num_classes)
        self.stem = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        # Down path: remember the channels of every feature map kept for a skip connection.
        widths = [base_channels * m for m in channel_mults]
        skips, ch, size = [base_channels], base_channels, image_size
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        for i, width in enumerate(widths):
            ins = [ch] + [width] * (num_res_blocks - 1)
            self.down.append(Level(ins, width, emb_dim, dropout, size in attention_resolutions))
            ch = width
            skips += [width] * num_res_blocks
            last = i == len(widths) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, stride=2, padding=1))
            if not last:
                skips.append(ch)
                size //= 2
        self.mid1 = ResBlock(ch, ch, emb_dim, dropout)
        self.mid_attn = AttentionBlock(ch)
        self.mid2 = ResBlock(ch, ch, emb_dim, dropout)

        # Up path: num_res_blocks + 1 blocks per level, each reading one skip.
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, width in reversed(list(enumerate(widths))):
            ins = []
            for _ in range(num_res_blocks + 1):
                ins.append(ch + skips.pop())
                ch = width
            self.up.append(Level(ins, width, emb_dim, dropout, size in attention_resolutions))
            self.upsample.append(nn.Identity() if i == 0 else nn.Conv2d(ch, ch, 3, padding=1))
            if i:
                size *= 2
        self.head = nn.Sequential(group_norm(ch), nn.SiLU(), nn.Conv2d(ch, in_channels, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, y)
        h = self.stem(x)
        kept = [h]
        for level, down in zip(self.down, self.downsample):
            for block, attn in zip(level.blocks, level.attns):
                h = attn(block(h, emb))
                kept.append(h)
            if not isinstance(down, nn.Identity):
                h = down(h)
                kept.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for level, up in zip(self.up, self.upsample):
            for block, attn in zip(level.blocks, level.attns):
                h = attn(block(torch.cat([h, kept.pop()], dim=1), emb))
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.head(h)


class ScoreMLP(nn.Module):
    """eps(x, t, y) or s(x, level, y) for vectors: h_{k+1} = SiLU(W_k h_k + E_k emb(t, y)), then a linear map."""

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 0,
        conditional: bool = False,
        hidden: Sequence[int] = (256, 256, 256),
        embed_dim: int = 64,
    ):
        super().__init__()
        self.data_shape = (in_channels,)
        self.num_classes = num_classes if conditional else 0
        self.embed = TimeEmbedding(embed_dim, embed_dim, self.num_classes)
        widths = [in_channels, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.embeds = nn.ModuleList(nn.Linear(embed_dim, b) for b in hidden)
        self.out = nn.Linear(widths[-1], in_channels)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, y)
        h = x
        for layer, embed in zip(self.layers, self.embeds):
            h = F.silu(layer(h) + embed(emb))
        return self.out(h)


def unet_levels(image_size: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(channel_mults, attention_resolutions) for a side: Ho et al.'s 32x32 net (1, 2, 2, 2) with attention at 16;
    28x28 (MNIST) halves only twice, 28 -> 14 -> 7, with attention at 7."""
    if image_size % 8 == 0 and image_size >= 32:
        return (1, 2, 2, 2), (image_size // 2,)
    return (1, 2, 2), (image_size // 4,)


@register_model("diffusion")
def ddpm_unet(
    in_channels: int = 1,
    image_size: int | None = 28,
    num_classes: int = 0,
    conditional: bool = False,
    base_channels: int = 64,
    channel_mults: Sequence[int] | None = None,
    num_res_blocks: int = 2,
    attention_resolutions: Sequence[int] | None = None,
    dropout: float = 0.1,
) -> DDPMUNet:
    """The DDPM U-Net; the levels and attention resolutions follow the image size unless given."""
    if not image_size:
        raise ValueError("ddpm_unet models images; for vectors (2-D toy data) use model=score_mlp")
    mults, attention = unet_levels(image_size)
    return DDPMUNet(
        in_channels,
        image_size,
        num_classes,
        conditional,
        base_channels,
        channel_mults or mults,
        num_res_blocks,
        attention if attention_resolutions is None else attention_resolutions,
        dropout,
    )


@register_model("diffusion")
def score_mlp(
    in_channels: int = 2,
    image_size: int | None = None,
    num_classes: int = 0,
    conditional: bool = False,
    hidden: Sequence[int] = (256, 256, 256),
    embed_dim: int = 64,
) -> ScoreMLP:
    """The MLP noise / score network for vectors."""
    if image_size:
        raise ValueError("score_mlp models vectors (2-D toy data); for images use model=ddpm_unet")
    return ScoreMLP(in_channels, num_classes, conditional, hidden, embed_dim)
