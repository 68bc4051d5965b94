"""Generation with and without the GPT's key/value cache: tokens per second at two lengths, in one run.

Both sample greedily (top_k=1) with `dlfound.tasks.language_model.sample_tokens`, the sampler `dlfound generate`
streams from, on the same network: with the cache each new token is one position's forward pass against the
stored keys and values; without it every token re-reads the whole context (up to block_size tokens). The network
is the GPT of experiment=shakespeare_char_gpt (4 layers, 4 heads, 128 wide) with a longer window, so that both
lengths fit in it and the two paths compute the same tokens (checked). Its weights are random: speed does not
depend on them. The ratio is cached / uncached tokens per second, measured in the same process.

    python scripts/benchmark_generate.py --lengths 128 512 --block-size 512 --threads 2
"""

import argparse
import time

import torch

from dlfound.models.gpt import GPT
from dlfound.tasks.language_model import sample_tokens


def tokens_per_second(net: GPT, length: int, cache: bool, repeats: int) -> tuple[float, list[int]]:
    """The best of `repeats` timings (the least disturbed by other work on the machine), and the tokens."""
    prompt = torch.tensor([0])
    best, tokens = float("inf"), []
    for _ in range(repeats):
        start = time.perf_counter()
        tokens = list(sample_tokens(net, prompt, length, top_k=1, cache=cache))
        best = min(best, time.perf_counter() - start)
    return length / best, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=int, nargs=2, default=[128, 512], help="tokens to generate, two lengths")
    parser.add_argument("--block-size", type=int, default=512)
    parser.add_argument("--vocab-size", type=int, default=65)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    net = GPT(args.vocab_size, args.block_size, n_layer=4, n_head=4, n_embd=128).eval()
    print(f"GPT 4 x 128, vocab {args.vocab_size}, block {args.block_size}, {torch.get_num_threads()} threads, greedy")
    print(f"{'length':>7} {'no cache tok/s':>15} {'cache tok/s':>12} {'speed-up':>9}  same tokens")
    for length in args.lengths:
        slow, plain = tokens_per_second(net, length, cache=False, repeats=args.repeats)
        fast, cached = tokens_per_second(net, length, cache=True, repeats=args.repeats)
        print(f"{length:>7} {slow:>15.1f} {fast:>12.1f} {fast / slow:>8.2f}x  {plain == cached}")


if __name__ == "__main__":
    main()
