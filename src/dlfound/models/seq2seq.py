"""Encoder-decoder (sequence-to-sequence) models: the encoder reads the source x_1..x_S, the decoder writes the
target one token at a time, each step conditioned on the tokens so far and, through attention, on the whole source.

- `RNNSearch`: Bahdanau, Cho & Bengio, "Neural machine translation by jointly learning to align and translate",
  ICLR 2015. A bidirectional GRU encoder gives annotations h_j = [fwd h_j; bwd h_j]; at step t the decoder scores
  every annotation against its previous state with additive attention, e_tj = v^T tanh(W s_{t-1} + U h_j),
  alpha_t = softmax_j(e_t), reads the context c_t = sum_j alpha_tj h_j, and updates its GRU state from
  [E y_{t-1}; c_t]. The output layer sees [s_t; c_t; E y_{t-1}] (the paper's deep output, without its maxout).
- `Seq2SeqTransformer`: Vaswani, Shazeer, Parmar, Uszkoreit, Jones, Gomez, Kaiser & Polosukhin, "Attention is all
  you need", NeurIPS 2017. Post-norm encoder layers (torch's nn.TransformerEncoderLayer) and decoder layers
  written out below (masked self-attention, cross-attention over the encoder's output, feed-forward), sinusoidal
  (or learned) positions, one embedding matrix shared by source, target and the output layer (the paper's 3.4),
  scaled by sqrt(d_model).

Both share one interface, the one the seq2seq task drives (teacher forcing, greedy and beam search):
    forward(src [B, S], tgt_in [B, U]) -> logits [B, U, vocab_size]      teacher forcing; PAD in src is masked
    encode(src) -> memory                                                 opaque to the caller
    init_state(memory) -> state
    decode_step(prev_tokens [B], state, memory) -> (logits [B, V], state, attention [B, S])
    reorder_state(state, index [B']) -> state     (and reorder_memory): pick / repeat batch rows for beam search
and the attributes pad_id, bos_id, eos_id, max_len. The source is right-padded with pad_id.
"""

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlfound.models.registry import register_model


def select_rows(tree, index: torch.Tensor):
    """Rows `index` of every tensor in a tensor, tuple or named tuple (None stays None)."""
    if tree is None:
        return None
    if isinstance(tree, torch.Tensor):
        return tree.index_select(0, index)
    rows = [select_rows(t, index) for t in tree]
    return type(tree)(*rows) if hasattr(tree, "_fields") else type(tree)(rows)


class Seq2Seq(nn.Module):
    """What both models share: the special token ids, and reordering for beam search."""

    def __init__(self, vocab_size: int | None, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2, max_len: int = 128):
        super().__init__()
        if not vocab_size:
            raise ValueError(
                "a sequence-to-sequence model needs vocab_size; the data provides it (data=addition, "
                "data=sorting), or set model.vocab_size"
            )
        if max(pad_id, bos_id, eos_id) >= vocab_size:
            raise ValueError(
                f"pad_id, bos_id and eos_id ({pad_id}, {bos_id}, {eos_id}) must be below vocab_size ({vocab_size})"
            )
        self.vocab_size, self.max_len = vocab_size, max_len
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    def reorder_state(self, state, index: torch.Tensor):
        """The decoder state of batch rows `index` (beam search: keep the surviving hypotheses, repeat rows)."""
        return select_rows(state, index)

    def reorder_memory(self, memory, index: torch.Tensor):
        """The encoder's memory of batch rows `index` (e.g. repeat each source once per beam)."""
        return select_rows(memory, index)


# -- Bahdanau et al. 2015 --------------------------------------------------------------------------------------------
class GRUMemory(NamedTuple):
    annotations: torch.Tensor  # h_j = [fwd h_j; bwd h_j], [B, S, 2H]
    keys: torch.Tensor  # U h_j, [B, S, A], computed once per source
    mask: torch.Tensor  # True at real tokens, [B, S]


class RNNSearch(Seq2Seq):
    """Bidirectional GRU encoder, additive attention, GRU decoder (the paper's RNNsearch).

    Args: vocab_size; hidden_size (H, each direction of the encoder and the decoder); embed_dim (E, default H);
    attention_dim (A, default H); dropout (on the embeddings); pad_id, bos_id, eos_id; max_len (the longest
    output a caller should decode; the GRU itself has no limit).
    """

    def __init__(
        self,
        vocab_size: int | None,
        hidden_size: int = 128,
        embed_dim: int | None = None,
        attention_dim: int | None = None,
        dropout: float = 0.0,
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        max_len: int = 128,
    ):
        super().__init__(vocab_size, pad_id, bos_id, eos_id, max_len)
        H, E, A = hidden_size, embed_dim or hidden_size, attention_dim or hidden_size
        self.hidden_size = H
        self.src_embed, self.tgt_embed = nn.Embedding(vocab_size, E), nn.Embedding(vocab_size, E)
        self.dropout = nn.Dropout(dropout)
        self.encoder = nn.GRU(E, H, batch_first=True, bidirectional=True)
        self.init_proj = nn.Linear(H, H)  # s_0 = tanh(W_s bwd h_1)
        self.W = nn.Linear(H, A, bias=False)  # the query's map, W s_{t-1}
        self.U = nn.Linear(2 * H, A)  # the keys' map, U h_j (+ bias)
        self.v = nn.Linear(A, 1, bias=False)
        self.decoder = nn.GRUCell(E + 2 * H, H)  # s_t = GRU([E y_{t-1}; c_t], s_{t-1})
        self.out = nn.Linear(H + 2 * H + E, vocab_size)  # logits from [s_t; c_t; E y_{t-1}]

    def encode(self, src: torch.Tensor) -> GRUMemory:
        mask = src != self.pad_id
        # Packing runs the backward GRU from each source's last real token, so padding changes nothing.
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(
            self.dropout(self.src_embed(src)), lengths, batch_first=True, enforce_sorted=False
        )
        h, _ = pad_packed_sequence(self.encoder(packed)[0], batch_first=True, total_length=src.shape[1])
        return GRUMemory(h, self.U(h), mask)

    def init_state(self, memory: GRUMemory) -> torch.Tensor:
        return torch.tanh(self.init_proj(memory.annotations[:, 0, self.hidden_size :]))  # [B, H]

    def decode_step(self, prev_tokens: torch.Tensor, state: torch.Tensor, memory: GRUMemory):
        emb = self.dropout(self.tgt_embed(prev_tokens))  # E y_{t-1}, [B, E]
        e = self.v(torch.tanh(self.W(state)[:, None] + memory.keys)).squeeze(-1)  # e_tj = v^T tanh(W s + U h_j)
        alpha = e.masked_fill(~memory.mask, float("-inf")).softmax(-1)  # [B, S], zero on PAD
        context = torch.bmm(alpha[:, None], memory.annotations).squeeze(1)  # c_t = sum_j alpha_tj h_j, [B, 2H]
        state = self.decoder(torch.cat([emb, context], -1), state)
        return self.out(torch.cat([state, context, emb], -1)), state, alpha

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory = self.encode(src)
        state, logits = self.init_state(memory), []
        for t in range(tgt_in.shape[1]):  # teacher forcing: the true previous token at every step
            step, state, _ = self.decode_step(tgt_in[:, t], state, memory)
            logits.append(step)
        return torch.stack(logits, 1)  # [B, U, V]


# -- Vaswani et al. 2017 ---------------------------------------------------------------------------------------------
class SinusoidalPositions(nn.Module):
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d)): [length, d]."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        pos = torch.arange(max_len).float()[:, None]
        freq = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2).float() / d_model)
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)[:, : d_model // 2]
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.pe[positions]


class DecoderLayer(nn.Module):
    """The paper's decoder layer, post-norm: each sublayer is y = LayerNorm(y + Dropout(Sublayer(y))).

    self-attention under the causal mask (position u sees the target up to u), cross-attention over the encoder's
    output (PAD masked), and the position-wise FFN max(0, y W_1 + b_1) W_2 + b_2. Returns the cross-attention
    weights averaged over heads ([B, U, S]) when asked.
    """

    def __init__(self, d_model: int, n_head: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, n_head, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d_model, n_head, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, dim_feedforward), nn.ReLU(), nn.Dropout(dropout), nn.Linear(dim_feedforward, d_model)
        )
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.dropout = nn.Dropout(dropout)

    def forward(self, y, memory, causal_mask, memory_pad_mask, need_weights: bool = False):
        a = self.self_attn(y, y, y, attn_mask=causal_mask, need_weights=False)[0]
        y = self.norm1(y + self.dropout(a))
        a, weights = self.cross_attn(y, memory, memory, key_padding_mask=memory_pad_mask, need_weights=need_weights)
        y = self.norm2(y + self.dropout(a))
        return self.norm3(y + self.dropout(self.ffn(y))), weights


class TransformerMemory(NamedTuple):
    output: torch.Tensor  # the encoder's output, [B, S, d_model]
    mask: torch.Tensor  # True at real tokens, [B, S]


class Seq2SeqTransformer(Seq2Seq):
    """Args: vocab_size; hidden_size (d_model); n_head; num_encoder_layers; num_decoder_layers; dim_feedforward
    (default 4 d_model); dropout; positions (sinusoidal | learned); pad_id, bos_id, eos_id; max_len (the most
    positions of a source or a target).

    decode_step's state is the target so far [B, u]: each step re-runs the decoder over it (causally, so the
    earlier positions' outputs are those forward() computes) and returns the last layer's cross-attention.
    """

    def __init__(
        self,
        vocab_size: int | None,
        hidden_size: int = 128,
        n_head: int = 4,
        num_encoder_layers: int = 2,
        num_decoder_layers: int = 2,
        dim_feedforward: int | None = None,
        dropout: float = 0.1,
        positions: str = "sinusoidal",
        pad_id: int = 0,
        bos_id: int = 1,
        eos_id: int = 2,
        max_len: int = 128,
    ):
        super().__init__(vocab_size, pad_id, bos_id, eos_id, max_len)
        if positions not in ("sinusoidal", "learned"):
            raise ValueError(f"positions is sinusoidal or learned, got {positions!r}")
        if hidden_size % n_head:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by n_head ({n_head})")
        d, ff = hidden_size, dim_feedforward or 4 * hidden_size
        self.d_model = d
        self.embed = nn.Embedding(vocab_size, d)
        self.positions = SinusoidalPositions(max_len, d) if positions == "sinusoidal" else nn.Embedding(max_len, d)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d, n_head, ff, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_encoder_layers, enable_nested_tensor=False)
        self.decoder = nn.ModuleList(DecoderLayer(d, n_head, ff, dropout) for _ in range(num_decoder_layers))
        self.head = nn.Linear(d, vocab_size)
        self.head.weight = self.embed.weight  # one matrix for source, target and output
        nn.init.normal_(self.embed.weight, std=d**-0.5)  # x sqrt(d) below: unit-variance inputs, O(1) logits

    def _embed(self, tokens: torch.Tensor) -> torch.Tensor:
        length = tokens.shape[1]
        if length > self.max_len:
            raise ValueError(
                f"this Transformer has positions for {self.max_len} tokens, got a sequence of {length}; "
                "build it with a larger model.max_len"
            )
        x = self.embed(tokens) * math.sqrt(self.d_model) + self.positions(torch.arange(length, device=tokens.device))
        return self.dropout(x)

    def encode(self, src: torch.Tensor) -> TransformerMemory:
        mask = src != self.pad_id
        return TransformerMemory(self.encoder(self._embed(src), src_key_padding_mask=~mask), mask)

    def init_state(self, memory: TransformerMemory) -> torch.Tensor:
        return memory.output.new_zeros(memory.output.shape[0], 0, dtype=torch.long)  # no target tokens yet

    def decode(self, tgt: torch.Tensor, memory: TransformerMemory, need_weights: bool = False):
        """(logits [B, U, V], the last layer's cross-attention [B, U, S] or None) for the target prefix `tgt`."""
        U = tgt.shape[1]
        causal = torch.ones(U, U, dtype=torch.bool, device=tgt.device).triu(1)  # True: the future, not attended
        y, weights = self._embed(tgt), None
        for i, layer in enumerate(self.decoder):
            last = i == len(self.decoder) - 1
            y, weights = layer(y, memory.output, causal, ~memory.mask, need_weights=need_weights and last)
        return self.head(y), weights

    def decode_step(self, prev_tokens: torch.Tensor, state: torch.Tensor, memory: TransformerMemory):
        tokens = torch.cat([state, prev_tokens[:, None]], 1)
        logits, weights = self.decode(tokens, memory, need_weights=True)
        return logits[:, -1], tokens, weights[:, -1]

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        return self.decode(tgt_in, self.encode(src))[0]


@register_model("seq2seq")
def seq2seq_gru(vocab_size: int | None = None, **kwargs) -> RNNSearch:
    """GRU encoder-decoder with additive attention (Bahdanau et al. 2015)."""
    return RNNSearch(vocab_size, **kwargs)


@register_model("seq2seq")
def seq2seq_transformer(vocab_size: int | None = None, **kwargs) -> Seq2SeqTransformer:
    """Transformer encoder-decoder (Vaswani et al. 2017)."""
    return Seq2SeqTransformer(vocab_size, **kwargs)
