"""Sequence tasks: CTC against its definition, the decoders, edit distance, sampling, and short runs of the CLI."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from dlfound.errors import ConfigError
from dlfound.metrics.sequences import bits_per_char, edit_distance, label_error_rate
from dlfound.tasks.ctc import collapse, greedy_decode, prefix_beam_decode
from dlfound.tasks.language_model import encode, sample_tokens


# -- CTC -------------------------------------------------------------------------------------------------------
def brute_force_ctc(log_probs: torch.Tensor, target: list[int]) -> torch.Tensor:
    """-log of the summed probability of every alignment (all C^T paths) that collapses to the target."""
    steps, classes = log_probs.shape
    total = torch.zeros((), dtype=torch.float64)
    for path in itertools.product(range(classes), repeat=steps):
        if collapse(list(path)) == target:
            total = total + log_probs[torch.arange(steps), torch.tensor(path)].sum().exp()
    return -total.log()


@pytest.mark.parametrize("target", [[1], [1, 2], [1, 1], [2, 1, 2]])
def test_ctc_loss_equals_the_sum_over_all_alignments(target):
    torch.manual_seed(0)
    steps, classes = 5, 3
    log_probs = F.log_softmax(torch.randn(steps, classes, dtype=torch.float64), -1)
    ours = F.ctc_loss(
        log_probs[:, None],
        torch.tensor([target]),
        torch.tensor([steps]),
        torch.tensor([len(target)]),
        blank=0,
        reduction="sum",
    )
    assert ours.item() == pytest.approx(brute_force_ctc(log_probs, target).item(), rel=1e-10)


def test_ctc_gradients_pass_gradcheck_through_log_softmax():
    torch.manual_seed(0)
    logits = torch.randn(6, 2, 4, dtype=torch.float64, requires_grad=True)
    targets, lengths = torch.tensor([[1, 2, 2], [3, 1, 0]]), torch.tensor([3, 2])

    def loss(z):
        return F.ctc_loss(F.log_softmax(z, -1), targets, torch.tensor([6, 6]), lengths, blank=0)

    assert torch.autograd.gradcheck(loss, (logits,))


def test_prefix_beam_search_finds_the_labelling_greedy_misses():
    # Two steps of p(blank) = 0.6, p(a) = 0.4: the best path is "blank blank" (0.36), but the labelling "a" has
    # probability 0.4 * 0.4 + 0.4 * 0.6 + 0.6 * 0.4 = 0.64.
    log_probs = torch.tensor([[[0.6, 0.4], [0.6, 0.4]]]).log()
    assert greedy_decode(log_probs) == [[]]
    assert prefix_beam_decode(log_probs, beam_size=4) == [[1]]


def test_prefix_beam_search_counts_repeats_separated_by_blanks():
    certain = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]]).clamp_min(1e-9).log()  # a, blank, a
    assert prefix_beam_decode(certain, beam_size=3) == [[1, 1]]
    assert greedy_decode(certain) == [[1, 1]]
    assert collapse([1, 1, 0, 1, 2, 2]) == [1, 1, 2]


def test_edit_distance_and_label_error_rate():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], [1, 2]) == 2 and edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert label_error_rate([[1, 2], [3]], [[1, 2, 3], [3]]) == pytest.approx(1 / 4)
    assert bits_per_char(math.log(2)) == pytest.approx(1.0)


# -- sampling --------------------------------------------------------------------------------------------------
class Counter(torch.nn.Module):
    """A 'language model' that always predicts the next id (mod V) with certainty."""

    block_size, is_recurrent = 8, False

    def __init__(self, vocab: int = 5):
        super().__init__()
        self.vocab = vocab
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, idx):
        return F.one_hot((idx + 1) % self.vocab, self.vocab).float() * 50


def test_sampling_continues_the_prompt_and_top_k_1_is_greedy():
    tokens = list(sample_tokens(Counter(), torch.tensor([3]), 6, temperature=1.0, top_k=1))
    assert tokens == [4, 0, 1, 2, 3, 4]
    with pytest.raises(ConfigError, match="temperature"):
        list(sample_tokens(Counter(), torch.tensor([0]), 1, temperature=0))


def test_a_prompt_with_unknown_characters_names_them():
    assert encode("abca", list("abc")).tolist() == [0, 1, 2, 0]
    with pytest.raises(ConfigError, match="'Z', 'q'"):
        encode("aZq", list("abc"))


def test_ctc_targets_longer_than_the_output_are_one_clear_error():
    from dlfound.tasks.ctc import CTCTask

    task = CTCTask(torch.nn.Linear(2, 3), optim={"_target_": "torch.optim.Adam"})
    log_probs = F.log_softmax(torch.randn(2, 4, 3), -1)  # 4 output steps
    targets, lengths = torch.ones(2, 6, dtype=torch.long), torch.tensor([6, 3])
    with pytest.raises(ConfigError, match="1 target"):
        task._loss(log_probs, targets, lengths)
