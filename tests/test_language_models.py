"""Language models beyond characters: the BPE tokeniser (round trip, learnt from the training split only), bits
per character from the characters the targets spell, the GPT's key/value cache (the same greedy text), the
tokeniser travelling in the checkpoint, and `dlfound figure scaling` (its power-law fits and a tiny budget)."""

import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from dlfound.data.text import CharTextDataModule
from dlfound.data.tokenizers import BpeTokenizer, CharTokenizer, spec_of, tokenizer_from_spec
from dlfound.models.gpt import GPT
from dlfound.tasks.language_model import LanguageModelTask, sample_tokens

pytestmark = pytest.mark.usefixtures("one_thread")

VERSE = "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 40


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- tokenisers ------------------------------------------------------------------------------------------------
def test_bpe_round_trips_any_text_and_its_spec_rebuilds_it():
    bpe = BpeTokenizer.train(VERSE, 300)
    assert bpe.vocab_size == 300
    for text in (VERSE[:200], "héllo wörld ☃, unseen words: zyxt\n\n", ""):
        assert bpe.decode(bpe.encode(text)) == text
    ids = bpe.encode(VERSE[:500])
    assert len(ids) < 500 / 2  # merges: a token holds several characters of familiar text
    again = tokenizer_from_spec(spec_of(bpe))
    assert again.encode(VERSE[:500]).tolist() == ids.tolist()
    assert spec_of(BpeTokenizer.train(VERSE, 300)) == spec_of(bpe)  # the same text learns the same merges
    char = tokenizer_from_spec(spec_of(CharTokenizer("abc")))
    assert char.decode(char.encode("cab")) == "cab"


def test_bpe_counts_each_character_once_even_split_across_tokens():
    bpe = BpeTokenizer.train(VERSE, 300)  # no merges of the snowman's three bytes: it is split over tokens
    text = "to be ☃ or ☃☃ é"
    ids = bpe.encode(text)
    assert int(bpe.chars_per_token()[ids].sum()) == len(text)
    assert len(ids) > len(text.replace("to be", "").replace("or", ""))  # the snowmen took several tokens


def test_bpe_is_learnt_from_the_training_split_only(tmp_path):
    # The last 10 % (validation) is a word the training text never holds: no merge may contain its letters.
    text = "abab cdcd " * 900 + "zqzqzqzq " * 100
    dm = CharTextDataModule(str(write(tmp_path / "t.txt", text)), block_size=8, tokenizer="bpe", bpe_vocab_size=280)
    vocab = json.loads(json.loads(dm.tokenizer)["tokenizer"])["model"]["vocab"]
    merged = [token for token in vocab if len(token) > 1]
    assert merged and not [token for token in merged if "z" in token or "q" in token]
    assert dm.decode(dm.val_ids) == text[int(len(text) * 0.9) :]  # yet byte-level BPE encodes the unseen split
    assert dm.decode(dm.train_ids) == text[: int(len(text) * 0.9)]
    assert 256 < dm.vocab_size == dm.num_classes <= 280 and dm.vocabulary is None  # what the text could merge


# -- bits per character ----------------------------------------------------------------------------------------
class Uniform(torch.nn.Module):
    """Every next token equally likely: ln V nats per token, whatever the text."""

    block_size, is_recurrent = 64, False

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab, self.dummy = vocab, torch.nn.Parameter(torch.zeros(()))

    def forward(self, idx):
        return torch.zeros(*idx.shape, self.vocab) + 0 * self.dummy


def test_bits_per_character_are_total_nats_over_total_characters():
    import lightning as L

    bpe = BpeTokenizer.train(VERSE, 300)
    optim = {"_target_": "torch.optim.SGD", "lr": 0.1}
    task = LanguageModelTask(Uniform(300), optim, tokenizer=spec_of(bpe), sample_length=0)
    chars = bpe.chars_per_token()
    long_tokens = torch.nonzero(chars >= 3).flatten()[:1].repeat(1, 7)  # 7 targets of >= 3 characters each
    single = torch.nonzero(chars == 1).flatten()[:1].repeat(1, 7)  # 7 targets of one character
    batches = [(x, x) for x in (long_tokens, single)]
    (metrics,) = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False).validate(
        task, torch.utils.data.DataLoader(batches, batch_size=None), verbose=False
    )
    total_chars = int(chars[long_tokens].sum() + chars[single].sum())
    assert metrics["val/loss"] == pytest.approx(math.log(300), rel=1e-5)  # nats per token
    expected = 14 * math.log(300) / total_chars / math.log(2)
    assert metrics["val/bpc"] == pytest.approx(expected, rel=1e-5)  # not the mean of the two batches' ratios
    per_token_chars = int(chars[long_tokens[0, 0]])
    mean_of_ratios = 0.5 * (math.log2(300) / per_token_chars + math.log2(300))
    assert abs(expected - mean_of_ratios) > 0.5  # which the check above tells apart


# -- the key/value cache ---------------------------------------------------------------------------------------
def trained_looking_gpt(block_size: int = 48) -> GPT:
    torch.manual_seed(0)
    net = GPT(40, block_size, n_layer=2, n_head=2, n_embd=32).eval()
    with torch.no_grad():  # larger weights than the initialisation's, so greedy text varies from token to token
        for p in net.parameters():
            p.normal_(0, 0.3)
    return net


def test_greedy_text_is_the_same_with_and_without_the_cache():
    net = trained_looking_gpt()
    prompt = torch.tensor([1, 5, 7, 2])
    plain = list(sample_tokens(net, prompt, 40, top_k=1, cache=False))
    cached = list(sample_tokens(net, prompt, 40, top_k=1, cache=True))
    assert cached == plain and len(set(plain)) > 5
    x = torch.randint(40, (3, 30))
    cache = net.new_cache()  # a prompt read in two pieces gives the logits of one forward pass
    pieces = torch.cat([net.forward_cached(x[:, :11], cache), net.forward_cached(x[:, 11:], cache)], 1)
    assert torch.allclose(pieces, net(x), atol=1e-5)


def test_the_cache_restarts_from_half_a_window_when_it_is_full():
    net = trained_looking_gpt(block_size=16)
    tokens = list(sample_tokens(net, torch.tensor([3]), 60, top_k=1, cache=True))
    assert len(tokens) == 60
    cache = net.new_cache()
    net.forward_cached(torch.randint(40, (1, 16)), cache)
    net.forward_cached(torch.tensor([[4]]), cache)
    assert cache.ids.shape[1] == 8 and cache.layers[0][0].shape[2] == 8


# -- the checkpoint carries the tokeniser ----------------------------------------------------------------------
@pytest.mark.slow
def test_a_bpe_checkpoint_generates_without_its_text(tmp_path, dlfound_in_process):
    text = write(tmp_path / "verse.txt", VERSE * 3)
    overrides = [
        "experiment=shakespeare_bpe_gpt",
        f"data.path={text}",
        "data.bpe_vocab_size=300",
        "model.n_layer=1",
        "model.n_embd=16",
        "trainer.max_epochs=1",
        "data.steps_per_epoch=3",
        "data.val_batches=1",
        "task.sample_length=5",
        "name=bpe",
    ]
    dlfound_in_process(["train", *overrides], tmp_path, check=True)
    run = tmp_path / "outputs" / "train" / "runs" / "bpe"
    results = json.loads((run / "results.json").read_text())
    assert results["metrics"]["test/bpc"] < results["metrics"]["test/loss"] / math.log(2)  # > 1 character a token
    text.unlink()
    out = dlfound_in_process(
        ["generate", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "prompt=To be", "length=20"],
        tmp_path,
        check=True,
    )
    plain = dlfound_in_process(
        ["generate", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "prompt=To be", "length=20", "cache=false"],
        tmp_path,
        check=True,
    )
    assert out.stdout.startswith("To be") and len(out.stdout) > len("To be") + 5
    assert out.stdout == plain.stdout  # 20 tokens fit in the window: the cache changes nothing


# -- the scaling figure ----------------------------------------------------------------------------------------
class FakeRun:
    def __init__(self, settings: dict, metrics: dict, step: int = 0):
        self.settings, self.results = settings, {"metrics": metrics, "global_step": step}

    def value(self, key):
        return str(self.settings.get(key, ""))

    def metric(self, name):
        return self.results["metrics"].get(name)


def test_the_power_law_panel_recovers_a_known_exponent():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dlfound.runs.figure_panels import Line
    from dlfound.runs.scaling_panels import draw_power_law, non_embedding_params

    sizes = [16, 32, 64, 128]
    runs = [FakeRun({"model.n_layer": 2, "model.n_head": 4, "model.n_embd": d}, {}) for d in sizes]
    counts = [non_embedding_params(run) for run in runs]
    assert counts[0] == 2 * (12 * 16 * 16 + 2 * 16) + 16  # Kaplan's 12 L d^2, plus the LayerNorm gains
    for run, n in zip(runs, counts, strict=True):
        run.results["metrics"]["test/loss"] = 7.0 * n**-0.2
    steps = [10, 20, 40]
    token_runs = [
        FakeRun({"data.batch_size": 4, "data.block_size": 8}, {"test/loss": 3 * (32 * s) ** -0.1}, s) for s in steps
    ]
    lines = [Line(f"size, {n}", "size", [run]) for n, run in zip(counts, runs, strict=True)]
    lines += [Line(f"tokens, {s}", "tokens", [run]) for s, run in zip(steps, token_runs, strict=True)]
    fig, (left, right) = plt.subplots(1, 2)
    size = {"x": "non_embedding_params", "metric": "test/loss", "select": "size*", "reference": {"Kaplan": 0.076}}
    assert draw_power_law(left, size, lines, ["C0"]) == {"size": pytest.approx(0.2)}
    tokens = {"x": "tokens", "metric": "test/loss", "select": "tokens*"}
    assert draw_power_law(right, tokens, lines, ["C0"]) == {"tokens": pytest.approx(0.1)}
    assert any("Kaplan" in label for label in left.get_legend_handles_labels()[1])
    plt.close(fig)


@pytest.mark.slow
def test_the_scaling_figure_runs_at_a_tiny_budget(tmp_path, dlfound_in_process):
    text = write(tmp_path / "verse.txt", VERSE * 3)
    dlfound_in_process(["figure", "scaling", "--budget", "smoke", f"data.path={text}"], tmp_path, check=True)
    (root,) = (tmp_path / "outputs" / "figure" / "scaling").iterdir()
    with Image.open(root / "scaling.png") as picture:
        assert picture.size[0] > 600
    sidecar = (root / "scaling.md").read_text()
    assert "loss against model size: size " in sidecar and "tokens, width 32 " in sidecar
    assert "tokens, width 96 " in sidecar and "Kaplan" in sidecar
