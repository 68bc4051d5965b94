"""GPT: a decoder-only Transformer language model. Radford, Narasimhan, Salimans & Sutskever, "Improving language
understanding by generative pre-training", 2018 (GPT), and Radford, Wu, Child, Luan, Amodei & Sutskever, "Language
models are unsupervised multitask learners", 2019 (GPT-2), in the shape of Karpathy's nanoGPT.

Token and learned position embeddings, then `n_layer` pre-LayerNorm blocks (GPT-2's placement)

    x = x + Attn(LN_1(x))        causal multi-head self-attention: token t sees tokens <= t only
    x = x + MLP(LN_2(x))         Linear(C, 4C) -> GELU -> Linear(4C, C)

a final LayerNorm and a linear head to the vocabulary whose weight IS the token embedding (weight tying, Press &
Wolf, "Using the output embedding to improve language models", 2017). Attention is softmax(Q K^T / sqrt(d)) V
with the causal mask, computed by `F.scaled_dot_product_attention(is_causal=True)` (a fused kernel where there is
one). Initialisation as GPT-2: N(0, 0.02) weights and embeddings, zero biases, and the projections that write into
the residual stream (attn.c_proj, mlp.c_proj) N(0, 0.02 / sqrt(2 n_layer)), so the residual's variance does not
grow with depth. The module names are nanoGPT's (transformer.wte, .wpe, .h.N.attn.c_attn, ..., lm_head).

`forward(idx [B, T]) -> logits [B, T, vocab_size]`: the next-token scores at every position, T <= block_size.

Generation with a key/value cache (`new_cache`, `forward_cached`): each attention layer keeps the keys and values
of the tokens it has seen, so a new token costs one position's forward pass (its query against the stored keys)
instead of the whole window's. Position embeddings are absolute, so when the window is full the cache cannot
slide one token: it restarts from the last block_size // 2 tokens (one forward pass of half a window), and the
context is then between half a window and a whole one, where the uncached sampler always reads a whole one.
Within block_size tokens both compute the same logits.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.models.registry import register_model


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention under the causal mask; Q, K, V from one Linear(C, 3C)."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool):
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be divisible by n_head ({n_head})")
        self.n_head, self.dropout = n_head, dropout
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, past: list | None = None) -> torch.Tensor:
        """`past`: this layer's cache, [keys, values] of the earlier tokens ([] at first), extended in place."""
        B, T, C = x.shape
        q, k, v = self.c_attn(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)  # [B, nh, T, hs]
        mask, causal = None, True
        if past:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
            # The new queries see every stored key and the new keys up to their own position.
            mask = torch.ones(T, k.shape[2], dtype=torch.bool, device=x.device).tril(k.shape[2] - T)
            causal = False
        if past is not None:
            past[:] = [k, v]
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=causal)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).reshape(B, T, C)))


class MLP(nn.Module):
    def __init__(self, n_embd: int, dropout: float, bias: bool):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """x + Attn(LN(x)), then + MLP(LN(.))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=bias)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout, bias)
        self.ln_2 = nn.LayerNorm(n_embd, bias=bias)
        self.mlp = MLP(n_embd, dropout, bias)

    def forward(self, x: torch.Tensor, past: list | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), past)
        return x + self.mlp(self.ln_2(x))


@dataclass
class KVCache:
    """Generation's memory: each block's [keys, values] ([B, n_head, L, head_size] each) and the L token ids."""

    layers: list
    ids: torch.Tensor | None = None


class GPT(nn.Module):
    """Args: vocab_size; block_size (the longest context, the number of position embeddings); n_layer; n_head;
    n_embd (the width C); dropout (embeddings, attention weights, residual branches); bias (in the Linear and
    LayerNorm layers; GPT-2 has them, nanoGPT's default drops them)."""

    is_recurrent = False

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
        bias: bool = False,
    ):
        super().__init__()
        if not vocab_size or not block_size:
            raise ValueError(
                f"GPT needs vocab_size and block_size (got {vocab_size} and {block_size}); the text data "
                "provides them (data=tinyshakespeare), or set model.vocab_size and model.block_size"
            )
        self.vocab_size, self.block_size = vocab_size, block_size
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(vocab_size, n_embd),  # token embedding
                wpe=nn.Embedding(block_size, n_embd),  # learned position embedding
                drop=nn.Dropout(dropout),
                h=nn.ModuleList(Block(n_embd, n_head, dropout, bias) for _ in range(n_layer)),
                ln_f=nn.LayerNorm(n_embd, bias=bias),
            )
        )
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # weight tying: one [V, C] matrix in and out
        self.reset_parameters(n_layer)

    def reset_parameters(self, n_layer: int) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # the residual projections: GPT-2's 1/sqrt(N) scaling, N = 2 n_layer
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * n_layer))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        self.check_input(idx)
        return self.run(idx, 0, [None] * len(self.transformer.h))

    def run(self, idx: torch.Tensor, start: int, pasts: list) -> torch.Tensor:
        """Logits of tokens at positions start, start + 1, ...; `pasts`: each block's cache (or None)."""
        pos = torch.arange(start, start + idx.shape[1], device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # [B, T, C]
        for block, past in zip(self.transformer.h, pasts, strict=True):
            x = block(x, past)
        return self.lm_head(self.transformer.ln_f(x))  # [B, T, vocab_size]

    def new_cache(self) -> KVCache:
        return KVCache([[] for _ in self.transformer.h])

    def forward_cached(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits of `idx` [B, T] continuing the tokens the cache holds; the cache takes them in."""
        self.check_input(idx[:, -self.block_size :])
        cache.ids = idx if cache.ids is None else torch.cat([cache.ids, idx], 1)
        if cache.ids.shape[1] > self.block_size:  # full: restart from the last half window (module docstring)
            idx = cache.ids = cache.ids[:, -max(self.block_size // 2, min(idx.shape[1], self.block_size)) :]
            cache.layers = [[] for _ in self.transformer.h]
            logits = self.run(idx, 0, cache.layers)
        else:
            logits = self.run(idx, cache.ids.shape[1] - idx.shape[1], cache.layers)
        return logits

    def check_input(self, idx: torch.Tensor) -> None:
        if idx.dim() != 2 or idx.is_floating_point():
            raise ValueError(f"GPT reads token ids [B, T], got a {idx.dtype} batch of shape {tuple(idx.shape)}")
        T = idx.shape[1]
        if T > self.block_size:
            raise ValueError(
                f"GPT was built for contexts of at most block_size={self.block_size} tokens, got {T}; "
                f"crop the input to its last {self.block_size} tokens, or build it with a larger one"
            )


@register_model("sequence")
def gpt(vocab_size: int | None = None, block_size: int | None = None, **kwargs) -> GPT:
    """GPT; by default nanoGPT's small character-level size (4 layers, 4 heads, 128 wide, no bias).

    Its parameter count is nanoGPT's for the same config, tied weights counted once. nanoGPT prints the count
    without the position embeddings (get_num_params(non_embedding=True)); `sum(p.numel() for p in
    gpt.parameters())` includes them: 804,096 for vocab 65, block 64 (nanoGPT says 795,904 = 0.80M).
    """
    return GPT(vocab_size, block_size, **kwargs)
