"""Vision Transformer: Dosovitskiy, Beyer, Kolesnikov, Weissenborn, Zhai, Unterthiner, Dehghani, Minderer,
Heigold, Gelly, Uszkoreit & Houlsby, "An image is worth 16x16 words: transformers for image recognition at
scale", ICLR 2021.

The image is cut into P x P patches, each flattened and linearly embedded (a P x P convolution with stride P),
a learnable [class] token is prepended and learnable position embeddings added. A stack of pre-norm
Transformer encoder blocks follows, z' = z + MSA(LN(z)), z = z' + MLP(LN(z')), with multi-head
self-attention softmax(Q K^T / sqrt(d)) V and a GELU MLP; the final LayerNorm of the class token feeds a
linear head. With no convolutional prior, ViT needs much data or strong augmentation to beat CNNs.

- ImageNet stem: 16x16 patches of a 224x224 image (196 tokens). `vit_b_16` (ViT-Base: dim 768, depth 12,
  12 heads, MLP 3072) has 86,567,656 parameters, as torchvision's.
- Small stem: 4x4 patches, so 32x32 input gives 64 tokens and 28x28 gives 49. `vit_tiny` uses the DeiT-Ti
  dimensions (Touvron et al. 2021: dim 192, depth 12, 3 heads, MLP 768): 5,362,762 parameters on CIFAR-10
  (32x32, 10 classes). There is no reference implementation of a 32x32 ViT to match; this is ours.
`forward_features` gives the class token's representation after the final LayerNorm (`num_features` = dim), the
input of the linear head.
Initialisation as timm: truncated normal (std 0.02) linear layers, position embeddings and class token,
zero biases, LayerNorm 1/0; the patch embedding as a linear layer (LeCun normal, torchvision's choice).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.models import init as weight_init
from dlfound.models.layers import check_stem
from dlfound.models.registry import register_model

PATCH = {"small": 4, "imagenet": 16}


class MultiHeadSelfAttention(nn.Module):
    """softmax(Q K^T / sqrt(d_head)) V per head, with Q, K, V from one linear map of the tokens."""

    def __init__(self, dim: int, heads: int, attention_dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"the embedding dim {dim} must be divisible by the number of heads {heads}")
        self.heads, self.attention_dropout = heads, attention_dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        n, tokens, dim = x.shape
        q, k, v = self.qkv(x).view(n, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attention_dropout if self.training else 0.0)
        return self.proj(x.transpose(1, 2).reshape(n, tokens, dim))


class EncoderBlock(nn.Module):
    """Pre-norm Transformer block: z + MSA(LN(z)), then + MLP(LN(.)) with a GELU hidden layer."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float = 0.0, attention_dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiHeadSelfAttention(dim, heads, attention_dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim), nn.Dropout(dropout)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        x = x + self.dropout(self.attn(self.norm1(x)))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    """Args: patch_size (default 4 for the small stem, 16 for the ImageNet one); dim; depth; heads; mlp_dim;
    dropout; attention_dropout. `image_size` must be a multiple of the patch size."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1000,
        image_size: int = 224,
        stem: str = "imagenet",
        patch_size: int | None = None,
        dim: int = 768,
        depth: int = 12,
        heads: int = 12,
        mlp_dim: int = 3072,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
    ):
        super().__init__()
        check_stem(stem, small="4x4 patches", imagenet="16x16 patches")
        patch_size = patch_size or PATCH[stem]
        if not image_size or image_size % patch_size:
            raise ValueError(
                f"a Vision Transformer needs the image size ({image_size}) to be a multiple of its patch "
                f"size ({patch_size}); set model.patch_size to a divisor of it"
            )
        self.patch_size, self.image_size = patch_size, image_size
        tokens = (image_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.zeros(1, tokens + 1, dim))
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.Sequential(
            *(EncoderBlock(dim, heads, mlp_dim, dropout, attention_dropout) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        self.num_features = dim
        self.reset_parameters()

    def reset_parameters(self) -> None:
        fan_in = self.patch_embed.in_channels * self.patch_size**2
        nn.init.trunc_normal_(self.patch_embed.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.trunc_normal_(self.pos_embedding, std=0.02)
        nn.init.trunc_normal_(self.class_token, std=0.02)
        weight_init.normal_(self, 0.02, nn.Linear, truncated=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The final class-token representation [N, dim]."""
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(
                f"this Vision Transformer was built for {self.image_size}x{self.image_size} images "
                f"(its position embeddings), got {x.shape[-2]}x{x.shape[-1]}"
            )
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # [N, tokens, dim]
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embedding
        x = self.norm(self.blocks(self.dropout(x)))
        return x[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def _vit(
    size: dict, in_channels: int = 3, num_classes: int = 1000, image_size: int = 224, **kwargs
) -> VisionTransformer:
    """A Vision Transformer with the dimensions and stem in `size`, unless the keywords say otherwise."""
    return VisionTransformer(in_channels, num_classes, image_size, **{**size, **kwargs})


@register_model("classifier")
def vit_tiny(**kwargs) -> VisionTransformer:
    """DeiT-Ti dimensions; 4x4 patches with the small stem (default), 16x16 with the ImageNet one."""
    kwargs.setdefault("image_size", 32)
    return _vit(dict(dim=192, depth=12, heads=3, mlp_dim=768, stem="small"), **kwargs)


def vit_b_16(**kwargs) -> VisionTransformer:
    """ViT-Base/16 (the paper's Table 1); with the small stem it uses 4x4 patches."""
    return _vit(dict(dim=768, depth=12, heads=12, mlp_dim=3072, stem="imagenet"), **kwargs)
