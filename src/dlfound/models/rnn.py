"""Recurrent networks: the Elman RNN (Elman, "Finding structure in time", 1990), the LSTM (Hochreiter &
Schmidhuber, "Long short-term memory", 1997, with the forget gate of Gers, Schmidhuber & Cummins 2000) and the
GRU (Cho, van Merrienboer, Gulcehre, Bahdanau, Bougares, Schwenk & Bengio, "Learning phrase representations
using RNN encoder-decoder for statistical machine translation", 2014).

A recurrent network reads a sequence x_1..x_T one step at a time and carries a state h_t (and the LSTM's cell
c_t) from step to step, with the same weights at every step. The cells below are the lecture's equations written
step by step; `Recurrent` stacks them into layers (optionally bidirectional) exactly as torch's nn.RNN, nn.LSTM
and nn.GRU do: same parameter names (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, ..._l1_reverse), same
shapes, same gate order (LSTM i, f, g, o; GRU r, z, n), same initialisation U(-1/sqrt(H), 1/sqrt(H)), so one
loads the other's state dict and gives the same outputs. `RecurrentNet(impl="torch")` runs torch's fused
(cuDNN on a GPU) layers, `impl="cells"` the readable ones; checkpoints move between the two.

`RecurrentNet` is the sequence model of the zoo: token ids [B, T] (through an embedding) or features
[B, T, F] in, a recurrent stack, and a linear head read out at the last step ([B, C]: classify a sequence,
regress a number) or at every step ([B, T, C]: a language model, a copy task). `forward_with_state` carries the
state between calls (truncated backpropagation through time over a long text).
"""

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from dlfound.models.registry import register_model

GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # blocks of rows in weight_ih / weight_hh


class _Cell(nn.Module):
    """The parameters of one step, named and shaped as torch's: weight_ih [G*H, I], weight_hh [G*H, H],
    bias_ih and bias_hh [G*H] (G gate blocks), each name followed by `suffix` ("_l1_reverse": layer 1's
    backward direction in a torch layer's state dict)."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, suffix: str = ""):
        super().__init__()
        self.input_size, self.hidden_size, self.suffix = input_size, hidden_size, suffix
        rows = self.gates * hidden_size
        self.register_parameter("weight_ih" + suffix, nn.Parameter(torch.empty(rows, input_size)))
        self.register_parameter("weight_hh" + suffix, nn.Parameter(torch.empty(rows, hidden_size)))
        self.register_parameter("bias_ih" + suffix, nn.Parameter(torch.empty(rows)) if bias else None)
        self.register_parameter("bias_hh" + suffix, nn.Parameter(torch.empty(rows)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.hidden_size)  # torch's RNN initialisation
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def affine(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(W_ih x + b_ih, W_hh h + b_hh), each [B, G*H]."""
        s = self.suffix
        return (
            F.linear(x, getattr(self, "weight_ih" + s), getattr(self, "bias_ih" + s)),
            F.linear(h, getattr(self, "weight_hh" + s), getattr(self, "bias_hh" + s)),
        )


class ElmanCell(_Cell):
    """Elman's simple recurrent step: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh) (or relu)."""

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, suffix: str = "", nonlinearity: str = "tanh"
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"an Elman RNN's nonlinearity is tanh or relu, got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, suffix)
        self.nonlinearity = nonlinearity

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gi, gh = self.affine(x, h)
        return torch.tanh(gi + gh) if self.nonlinearity == "tanh" else torch.relu(gi + gh)


class LSTMCell(_Cell):
    """One LSTM step; the state is (h, c).

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      input gate
    f = sigmoid(W_if x + b_if + W_hf h + b_hf)      forget gate (Gers et al. 2000)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)         candidate cell
    o = sigmoid(W_io x + b_io + W_ho h + b_ho)      output gate
    c' = f * c + i * g                              the cell: an additive path through time
    h' = o * tanh(c')
    """

    gates = 4

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        gi, gh = self.affine(x, h)
        i, f, g, o = (gi + gh).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class GRUCell(_Cell):
    """One GRU step (torch's form: the reset gate scales W_hn h + b_hn).

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)      reset gate
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)      update gate
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))   candidate state
    h' = (1 - z) * n + z * h
    """

    gates = 3

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gi, gh = self.affine(x, h)
        ir, iz, in_ = gi.chunk(3, dim=-1)
        hr, hz, hn = gh.chunk(3, dim=-1)
        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
        n = torch.tanh(in_ + r * hn)
        return (1 - z) * n + z * h


CELLS = {"rnn": ElmanCell, "lstm": LSTMCell, "gru": GRUCell}
TORCH_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class Recurrent(nn.Module):
    """A stack of recurrent layers built from the cells, a drop-in for nn.RNN / nn.LSTM / nn.GRU (`mode`):
    the same arguments, forward(input, hx=None) -> (output, h_n) or (output, (h_n, c_n)), output [B, T, D*H]
    (batch_first) or [T, B, D*H], h_n [num_layers * D, B, H] (D = 2 when bidirectional), and the same state dict.

    The cells' parameters live in `cells` (cells.3.weight_ih_l1_reverse); the state dict drops the "cells.N."
    so that its keys are torch's (weight_ih_l1_reverse), and loading accepts those keys.
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        nonlinearity: str = "tanh",
    ):
        super().__init__()
        if mode not in CELLS:
            raise ValueError(f"unknown recurrent cell {mode!r}; choose one of {', '.join(CELLS)}")
        self.mode, self.hidden_size, self.num_layers = mode, hidden_size, num_layers
        self.batch_first, self.dropout, self.bidirectional = batch_first, dropout, bidirectional
        directions = 2 if bidirectional else 1
        cells = []
        for layer in range(num_layers):
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                size = input_size if layer == 0 else hidden_size * directions
                extra = {"nonlinearity": nonlinearity} if mode == "rnn" else {}
                cells.append(CELLS[mode](size, hidden_size, bias, suffix, **extra))
        self.cells = nn.ModuleList(cells)
        # "cells.3.weight_ih_l1_reverse" <-> "weight_ih_l1_reverse"
        self._torch_names = {
            f"cells.{i}.{name}": name for i, cell in enumerate(cells) for name, _ in cell.named_parameters()
        }
        self._own_names = {v: k for k, v in self._torch_names.items()}
        self.register_state_dict_post_hook(_to_torch_names)
        self.register_load_state_dict_pre_hook(_from_torch_names)

    def forward(self, input: torch.Tensor, hx=None):
        lstm = self.mode == "lstm"
        x = input if self.batch_first else input.transpose(0, 1)  # [B, T, F]
        batch, steps, _ = x.shape
        directions = 2 if self.bidirectional else 1
        if hx is None:
            zeros = x.new_zeros(self.num_layers * directions, batch, self.hidden_size)
            hx = (zeros, zeros) if lstm else zeros
        h0, c0 = hx if lstm else (hx, None)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                k = layer * directions + direction
                cell, state = self.cells[k], (h0[k], c0[k]) if lstm else h0[k]
                ys = [None] * steps
                for t in reversed(range(steps)) if direction else range(steps):  # the backward one reads x_T..x_1
                    state = cell(x[:, t], state)
                    ys[t] = state[0] if lstm else state
                outputs.append(torch.stack(ys, 1))
                h_n.append(state[0] if lstm else state)
                c_n.append(state[1] if lstm else None)
            x = torch.cat(outputs, -1)  # [B, T, D*H]: both directions' h_t side by side
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout)  # between layers, as torch's
        output = x if self.batch_first else x.transpose(0, 1)
        return output, ((torch.stack(h_n), torch.stack(c_n)) if lstm else torch.stack(h_n))


def _rename(state_dict: dict, prefix: str, names: dict[str, str]) -> None:
    for key in list(state_dict):  # re-insert every key to keep the order
        value = state_dict.pop(key)
        local = key[len(prefix) :] if key.startswith(prefix) else None
        state_dict[prefix + names[local] if local in names else key] = value


def _to_torch_names(module: Recurrent, state_dict, prefix, local_metadata) -> None:
    _rename(state_dict, prefix, module._torch_names)


def _from_torch_names(module: Recurrent, state_dict, prefix, *args) -> None:
    _rename(state_dict, prefix, module._own_names)


class RecurrentNet(nn.Module):
    """Embedding (tokens) or features -> recurrent stack -> linear head.

    Args: cell (rnn | lstm | gru); impl (torch: nn.RNN/LSTM/GRU; cells: `Recurrent`, the step-by-step cells);
    vocab_size (token ids [B, T] in, through a vocab_size x embed_dim embedding; embed_dim defaults to
    hidden_size) or in_features (features [B, T, in_features] in; vocab_size wins when both are set);
    hidden_size, num_layers, bidirectional, dropout (between layers); num_classes (logits) or, when it is None,
    num_outputs (regression; [B] when it is 1 and readout is last); readout: last (the output after the last
    step: [B, C]; bidirectional: the forward direction's last output beside the backward direction's first) or
    all ([B, T, C], every step); nonlinearity (tanh | relu, the Elman RNN's).
    """

    is_recurrent = True

    def __init__(
        self,
        cell: str = "lstm",
        impl: str = "torch",
        vocab_size: int | None = None,
        in_features: int | None = None,
        embed_dim: int | None = None,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        num_classes: int | None = None,
        num_outputs: int | None = None,
        readout: str = "last",
        nonlinearity: str = "tanh",
    ):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown recurrent cell {cell!r}; choose one of {', '.join(CELLS)}")
        if impl not in ("torch", "cells"):
            raise ValueError(
                f"unknown impl {impl!r}; choose torch (nn.{TORCH_LAYERS[cell].__name__}) or cells "
                "(the step-by-step cells)"
            )
        if readout not in ("last", "all"):
            raise ValueError(f"readout is last (one output per sequence) or all (one per step), got {readout!r}")
        if not vocab_size and not in_features:
            raise ValueError(
                "a recurrent network needs vocab_size (token ids [B, T]) or in_features (features "
                "[B, T, F]); both are null: pick a sequence dataset (e.g. data=mnist_rows) or set one"
            )
        outputs = num_classes if num_classes is not None else num_outputs
        if not outputs:
            raise ValueError(
                "a recurrent network needs num_classes (classification, language modelling) or "
                "num_outputs (regression); both are null"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.cell, self.impl, self.readout, self.bidirectional = cell, impl, readout, bidirectional
        self.vocab_size, self.in_features = vocab_size or None, None if vocab_size else in_features
        self.num_classes, self.num_outputs = num_classes, None if num_classes is not None else num_outputs
        self.hidden_size, self.num_layers = hidden_size, num_layers
        if self.vocab_size:
            self.embedding = nn.Embedding(vocab_size, embed_dim or hidden_size)
        input_size = (embed_dim or hidden_size) if self.vocab_size else in_features
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        layer = TORCH_LAYERS[cell] if impl == "torch" else partial(Recurrent, cell)
        self.rnn = layer(
            input_size, hidden_size, num_layers, batch_first=True, dropout=dropout, bidirectional=bidirectional, **extra
        )
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), outputs)

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Token ids [B, T] -> embeddings [B, T, E]; features [B, T, F] as they are ([B, T] when F is 1)."""
        shape = "x".join(map(str, x.shape))
        if self.vocab_size:
            if x.dim() != 2 or x.is_floating_point():
                raise ValueError(
                    f"this recurrent network reads token ids [B, T] (integers below {self.vocab_size}); "
                    f"got a {x.dtype} batch of shape {shape}"
                )
            return self.embedding(x)
        if x.dim() == 2 and self.in_features == 1:
            x = x.unsqueeze(-1)
        if x.dim() != 3 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"this recurrent network reads sequences [B, T, {self.in_features}], got a batch of shape "
                f"{shape}; give it sequences [B, T, F] (data=mnist_rows reads an image row by row, "
                "data=mnist_pixels pixel by pixel) or set model.in_features to F"
            )
        return x

    def forward_with_state(self, x: torch.Tensor, state=None):
        """(out, new_state): start from `state` (None: zeros) and return the final state (h, or (h, c) for the
        LSTM, each [num_layers * D, B, H]) for the next window; detach it there to truncate backpropagation."""
        out, state = self.rnn(self._inputs(x), state)  # [B, T, D*H]
        if self.readout == "last":
            if self.bidirectional:  # the backward direction ends at the first step
                h = self.hidden_size
                out = torch.cat([out[:, -1, :h], out[:, 0, h:]], -1)
            else:
                out = out[:, -1]
        out = self.head(out)
        if self.num_outputs == 1 and self.readout == "last":
            out = out.squeeze(-1)  # a regression target per sequence: [B]
        return out, state

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_state(x)[0]


@register_model("sequence")
def rnn(**kwargs) -> RecurrentNet:
    """Elman RNN (tanh; nonlinearity=relu for the ReLU RNN) through torch's nn.RNN."""
    return RecurrentNet("rnn", **kwargs)


@register_model("sequence")
def elman_rnn(**kwargs) -> RecurrentNet:
    """The same Elman RNN, run by the step-by-step `ElmanCell` (impl=cells): the lecture's version."""
    kwargs.setdefault("impl", "cells")
    return RecurrentNet("rnn", **kwargs)


@register_model("sequence")
def lstm(**kwargs) -> RecurrentNet:
    """LSTM with forget gate (nn.LSTM; impl=cells runs `LSTMCell`)."""
    return RecurrentNet("lstm", **kwargs)


@register_model("sequence")
def gru(**kwargs) -> RecurrentNet:
    """GRU (nn.GRU; impl=cells runs `GRUCell`)."""
    return RecurrentNet("gru", **kwargs)
