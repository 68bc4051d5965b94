"""Measurements of sequences: bits per character, edit distance and the label error rate of CTC.

- Bits per character: the cross-entropy in nats divided by ln 2 (char-level language models report it).
- Edit (Levenshtein) distance: the fewest insertions, deletions and substitutions that turn one sequence into
  the other, by the dynamic programme d[i][j] = min(d[i-1][j] + 1, d[i][j-1] + 1, d[i-1][j-1] + [a_i != b_j]).
- Label error rate (Graves et al. 2006): the summed edit distances over the summed target lengths.
"""

import math
from collections.abc import Sequence


def bits_per_char(nats: float) -> float:
    return nats / math.log(2)


def edit_distance(a: Sequence, b: Sequence) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def label_error_rate(predictions: Sequence[Sequence], targets: Sequence[Sequence]) -> float:
    total = sum(len(t) for t in targets)
    return sum(edit_distance(p, t) for p, t in zip(predictions, targets, strict=True)) / max(1, total)
