"""The sequence models behave as their papers and the tasks that drive them expect.

- The step-by-step cells are torch's layers: same parameter names and shapes, and with one's state dict loaded
  into the other the same outputs and final states (2 layers, bidirectional, batch_first or not).
- RecurrentNet: impl=torch and impl=cells swap checkpoints; readouts have the tasks' shapes; carrying the state
  across two halves of a sequence equals one pass over it (truncated BPTT); input it cannot read is a clear error.
- GPT: causal (token t never changes the logits before t), nanoGPT's parameter count, the head IS the embedding,
  a context longer than block_size is a clear error.
- Seq2seq: decode_step fed the true tokens reproduces forward(); padding the source changes nothing.
- CRNN: T = W // 4 columns, as output_length says.
"""

import pytest
import torch
from torch import nn

from dlfound.models import CRNN, GPT, Recurrent, RecurrentNet, crnn, gpt, seq2seq_gru, seq2seq_transformer
from dlfound.models.rnn import GRUCell, LSTMCell

TORCH_LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


pytestmark = pytest.mark.usefixtures("one_thread")


def close(a, b, atol=1e-5):
    torch.testing.assert_close(a, b, atol=atol, rtol=1e-5)


# -- recurrent cells and layers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,nonlinearity", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", None), ("gru", None)])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first", [(2, True, True), (2, False, False), (1, True, False)])
def test_cells_match_torch_layers(mode, nonlinearity, num_layers, bidirectional, batch_first):
    torch.manual_seed(0)
    extra = {"nonlinearity": nonlinearity} if nonlinearity else {}
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, **extra)
    ref, ours = TORCH_LAYERS[mode](5, 7, **kwargs), Recurrent(mode, 5, 7, **kwargs)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [(k, v.shape) for k, v in ref.state_dict().items()]
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(3, 6, 5) if batch_first else torch.randn(6, 3, 5)
    h0 = torch.randn(num_layers * (2 if bidirectional else 1), 3, 7)
    hx = (h0, torch.randn_like(h0)) if mode == "lstm" else h0
    for state in (None, hx):
        (out_ref, h_ref), (out, h) = ref(x, state), ours(x, state)
        close(out, out_ref)
        close(h, h_ref)  # (h_n, c_n) for the LSTM
    ref.load_state_dict(ours.state_dict())  # and the other way round


@pytest.mark.parametrize("ours,theirs", [(LSTMCell, nn.LSTMCell), (GRUCell, nn.GRUCell)])
def test_a_cell_alone_is_torchs_cell(ours, theirs):
    """Unsuffixed, a cell's parameters are torch's cell's (weight_ih, weight_hh, bias_ih, bias_hh)."""
    ref, cell = theirs(4, 6), ours(4, 6)
    cell.load_state_dict(ref.state_dict())
    x, h = torch.randn(2, 4), torch.randn(2, 6)
    state = (h, torch.randn(2, 6)) if ours is LSTMCell else h
    close(cell(x, state), ref(x, state))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_torch_and_cells_impls_swap_checkpoints(cell):
    torch.manual_seed(0)
    kwargs = dict(in_features=5, hidden_size=8, num_layers=2, bidirectional=True, num_classes=3, readout="all")
    fast, readable = RecurrentNet(cell, "torch", **kwargs), RecurrentNet(cell, "cells", **kwargs)
    assert list(fast.state_dict()) == list(readable.state_dict())
    readable.load_state_dict(fast.state_dict())
    x = torch.randn(2, 9, 5)
    close(readable(x), fast(x))


@pytest.mark.parametrize("impl", ["torch", "cells"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_carrying_the_state_over_two_halves_is_one_pass(cell, impl):
    """What the language-model task does with forward_with_state: a window's final state starts the next one."""
    torch.manual_seed(0)
    net = RecurrentNet(cell, impl, vocab_size=11, hidden_size=8, num_layers=2, num_classes=11, readout="all").eval()
    ids = torch.randint(0, 11, (3, 10))
    whole, state_whole = net.forward_with_state(ids, None)
    first, state = net.forward_with_state(ids[:, :6], None)
    state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
    second, state = net.forward_with_state(ids[:, 6:], state)
    close(torch.cat([first, second], 1), whole)
    close(state, state_whole)
    h = state[0] if cell == "lstm" else state
    assert h.shape == (2, 3, 8) and (cell == "lstm") == isinstance(state, tuple)
    close(net(ids), whole)  # forward starts from zeros


def test_readouts():
    torch.manual_seed(0)
    x = torch.randn(4, 9, 3)
    assert RecurrentNet("lstm", in_features=3, hidden_size=8, num_classes=5)(x).shape == (4, 5)
    assert RecurrentNet("gru", in_features=3, hidden_size=8, num_classes=5, readout="all")(x).shape == (4, 9, 5)
    assert RecurrentNet("rnn", in_features=3, hidden_size=8, num_outputs=1)(x).shape == (4,)  # the adding problem
    assert RecurrentNet("rnn", in_features=1, hidden_size=8, num_classes=10)(torch.randn(4, 20)).shape == (4, 10)
    assert RecurrentNet("lstm", vocab_size=10, hidden_size=8, num_classes=9, readout="all", bidirectional=True)(
        torch.randint(0, 10, (4, 7))
    ).shape == (4, 7, 9)  # copy may look ahead


@pytest.mark.parametrize("impl", ["torch", "cells"])
def test_bidirectional_last_readout_is_both_directions_final_states(impl):
    """Forward direction after the last step, backward direction after the first: the last layer's h_n."""
    torch.manual_seed(0)
    net = RecurrentNet("gru", impl, in_features=3, hidden_size=8, num_layers=2, bidirectional=True, num_classes=5)
    x = torch.randn(4, 9, 3)
    out, h_n = net.forward_with_state(x)
    close(out, net.head(torch.cat([h_n[-2], h_n[-1]], -1)))


def test_recurrent_net_explains_what_it_cannot_read():
    net = RecurrentNet("lstm", in_features=28, hidden_size=8, num_classes=10)
    with pytest.raises(ValueError, match=r"give it sequences \[B, T, F\] \(data=mnist_rows"):
        net(torch.rand(2, 1, 28, 28))  # an image batch: data=mnist with a recurrent model
    with pytest.raises(ValueError, match="vocab_size .* or in_features"):
        RecurrentNet("lstm", num_classes=10)
    with pytest.raises(ValueError, match="token ids"):
        RecurrentNet("lstm", vocab_size=10, num_classes=10)(torch.rand(2, 5, 3))
    with pytest.raises(ValueError, match="num_classes .* or .*num_outputs"):
        RecurrentNet("lstm", in_features=2)
    with pytest.raises(ValueError, match="unknown recurrent cell"):
        RecurrentNet("transformer", in_features=2, num_classes=2)


# -- GPT -----------------------------------------------------------------------------------------------------------
def test_gpt_is_causal():
    torch.manual_seed(0)
    net = gpt(vocab_size=17, block_size=12, n_layer=2, n_head=2, n_embd=16).eval()
    ids = torch.randint(0, 17, (2, 12))
    changed = ids.clone()
    changed[:, 7] = (ids[:, 7] + 1) % 17
    with torch.no_grad():
        a, b = net(ids), net(changed)
    assert a.shape == (2, 12, 17)
    close(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def nanogpt_params(vocab: int, block: int, n_layer: int, n_embd: int, bias: bool) -> tuple[int, int]:
    """nanoGPT's model.py, counted by hand: (all parameters, its get_num_params(), which leaves out wpe)."""
    C, b = n_embd, int(bias)
    layernorm = C + b * C
    block_params = (
        2 * layernorm
        + (3 * C * C + b * 3 * C)
        + (C * C + b * C)  # ln_1, ln_2, attn.c_attn, attn.c_proj
        + (4 * C * C + b * 4 * C)
        + (4 * C * C + b * C)
    )  # mlp.c_fc, mlp.c_proj
    total = vocab * C + block * C + n_layer * block_params + layernorm  # wte (= lm_head), wpe, blocks, ln_f
    return total, total - block * C


@pytest.mark.parametrize("bias", [False, True])
def test_gpt_has_nanogpts_parameter_count(bias):
    # nanoGPT's CPU shakespeare-char config: vocab 65, block 64, 4 layers, 4 heads, 128 wide, no bias.
    # nanoGPT prints "number of parameters: 0.80M" (795,904, without wpe); ours counts wpe too: 804,096.
    net = gpt(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, bias=bias)
    total, without_positions = nanogpt_params(65, 64, 4, 128, bias)
    assert sum(p.numel() for p in net.parameters()) == total
    assert total - net.transformer.wpe.weight.numel() == without_positions
    if not bias:
        assert (total, without_positions) == (804_096, 795_904)


def test_gpt_ties_the_head_to_the_embedding():
    net = GPT(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    assert net.lm_head.weight is net.transformer.wte.weight
    assert sum(p is net.lm_head.weight for p in net.parameters()) == 1
    assert net.is_recurrent is False and net.block_size == 8


def test_gpt_refuses_a_context_longer_than_block_size():
    net = gpt(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    assert net(torch.randint(0, 11, (1, 8))).shape == (1, 8, 11)
    with pytest.raises(ValueError, match="block_size=8"):
        net(torch.randint(0, 11, (1, 9)))
    with pytest.raises(ValueError, match="vocab_size and block_size"):
        gpt(vocab_size=None, block_size=8)


# -- seq2seq -------------------------------------------------------------------------------------------------------
SEQ2SEQ = {"seq2seq_gru": seq2seq_gru, "seq2seq_transformer": seq2seq_transformer}
V, PAD, BOS, EOS = 14, 0, 1, 2


def seq2seq_pair(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, V, (3, 8), generator=g)
    src[0, 5:] = PAD  # row 0 is 5 tokens long
    tgt_in = torch.randint(3, V, (3, 6), generator=g)
    tgt_in[:, 0] = BOS
    return src, tgt_in


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_decode_step_reproduces_forward(name):
    torch.manual_seed(0)
    net = SEQ2SEQ[name](vocab_size=V, hidden_size=16).eval()
    src, tgt_in = seq2seq_pair()
    with torch.no_grad():
        logits = net(src, tgt_in)
        memory = net.encode(src)
        state, steps = net.init_state(memory), []
        for t in range(tgt_in.shape[1]):
            step, state, attention = net.decode_step(tgt_in[:, t], state, memory)
            steps.append(step)
            assert attention.shape == src.shape
            close(attention.sum(-1), torch.ones(3))
            assert not attention[0, 5:].any()  # no attention on PAD
    assert logits.shape == (3, 6, V)
    close(torch.stack(steps, 1), logits)


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_padding_the_source_changes_nothing(name):
    torch.manual_seed(0)
    net = SEQ2SEQ[name](vocab_size=V, hidden_size=16).eval()
    src, tgt_in = seq2seq_pair()
    with torch.no_grad():
        padded = net(src, tgt_in)
        alone = net(src[:1, :5], tgt_in[:1])  # row 0 without its padding
        more = net(torch.cat([src, torch.zeros(3, 4, dtype=torch.long)], 1), tgt_in)  # 4 more PAD columns
    close(padded[:1], alone)
    close(more, padded)


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_reorder_state_selects_and_repeats_rows(name):
    """Beam search keeps some hypotheses and repeats others: reordered state, same rows' next logits."""
    torch.manual_seed(0)
    net = SEQ2SEQ[name](vocab_size=V, hidden_size=16, pad_id=PAD, bos_id=BOS, eos_id=EOS).eval()
    assert (net.pad_id, net.bos_id, net.eos_id) == (PAD, BOS, EOS)
    src, tgt_in = seq2seq_pair()
    index = torch.tensor([2, 2, 0])
    with torch.no_grad():
        memory = net.encode(src)
        _, state, _ = net.decode_step(tgt_in[:, 0], net.init_state(memory), memory)
        logits, _, _ = net.decode_step(tgt_in[:, 1], state, memory)
        picked, _, _ = net.decode_step(
            tgt_in[index, 1], net.reorder_state(state, index), net.reorder_memory(memory, index)
        )
    close(picked, logits[index])


# -- CRNN ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("width", [28, 30, 112, 164])
def test_crnn_gives_one_column_per_four_pixels(width):
    net = crnn(in_channels=1, num_classes=11, image_size=28, hidden_size=16).eval()
    with torch.no_grad():
        logits = net(torch.rand(2, 1, 28, width))
    assert net.output_length(width) == width // 4
    assert logits.shape == (2, width // 4, 11)


def test_crnn_explains_a_wrong_height():
    net = CRNN(image_size=28, hidden_size=8)
    with pytest.raises(ValueError, match=r"strips \[B, C, 28, W\]"):
        net(torch.rand(2, 1, 32, 100))
