"""Sequence models end to end through the real `dlfound` command, at toy sizes: each run learns, writes what its
task promises (text samples, attention maps, decoded strips) where TensorBoard reads it, and its checkpoint
serves `dlfound generate` and `dlfound eval`. Offline: a generated text and fake MNIST digits."""

import math

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import read_results, run_folders
from test_sequence_data import write_idx

WORDS = ["the", "king", "queen", "lord", "love", "death", "night", "day", "and", "of", "to", "my", "thy"]
FAST = ["print_config=false", "callbacks.progress_bar=null", "callbacks.model_summary=null"]


def write_corpus(folder, lines: int = 1500):
    rng = np.random.default_rng(0)
    text = "\n".join(" ".join(rng.choice(WORDS, 8)) for _ in range(lines))
    path = folder / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path, len(set(text[: int(len(text) * 0.9)]))


def events(run):
    accumulator = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


@pytest.mark.slow
def test_char_gpt_learns_generates_and_names_unknown_prompt_characters(workdir, dlfound_in_process):
    corpus, vocab = write_corpus(workdir)
    dlfound_in_process(
        [
            "train",
            "data=text",
            f"data.path={corpus}",
            "model=gpt",
            "model.n_layer=1",
            "model.n_head=2",
            "model.n_embd=32",
            "data.block_size=16",
            "data.batch_size=16",
            "data.steps_per_epoch=60",
            "data.val_batches=4",
            "trainer.max_epochs=2",
            "task.sample_length=40",
            *FAST,
        ],
        workdir,
        check=True,
    )
    run = run_folders(workdir / "outputs")[-1]
    results = read_results(run)
    assert results["choices"]["task"] == "language_model"  # the text data selects its task
    assert results["metrics"]["test/loss"] < 0.6 * math.log(vocab)  # from ln(V) at the start
    assert results["metrics"]["test/bpc"] == pytest.approx(results["metrics"]["test/loss"] / math.log(2), rel=1e-4)
    assert len((run / "samples" / "epoch001.txt").read_text()) == 41
    assert any(tag.startswith("samples/text") for tag in events(run).Tags()["tensors"])
    ckpt = run / "checkpoints" / "last.ckpt"
    config = torch.load(ckpt, weights_only=True)["dlfound_config"]
    assert config["model"]["vocab_size"] == vocab and len(config["task"]["vocabulary"]) == vocab

    corpus.unlink()  # the checkpoint alone serves generation
    out = dlfound_in_process(
        ["generate", f"ckpt_path={ckpt}", "prompt=the king", "length=30", "top_k=5"], workdir, check=True
    ).stdout
    assert out.startswith("the king") and len(out.rstrip("\n")) == len("the king") + 30
    bad = dlfound_in_process(["generate", f"ckpt_path={ckpt}", "prompt=ROMEO", "length=5"], workdir)
    assert bad.returncode != 0 and "'E', 'M', 'O', 'R'" in bad.stderr and "Traceback" not in bad.stderr


def test_recurrent_language_model_carries_its_state_across_windows(workdir):
    from omegaconf import OmegaConf

    from dlfound.runs.build import build, compose

    corpus, _ = write_corpus(workdir, 200)
    cfg = compose(
        [
            "data=text",
            f"data.path={corpus}",
            "model=lstm",
            "model.hidden_size=16",
            "data.ordered=true",
            "data.block_size=8",
            "data.batch_size=4",
        ]
    )
    cfg.paths.output_dir = "."
    datamodule, task = build(OmegaConf.to_container(cfg, resolve=True))
    first, second = list(datamodule.train_dataloader())[:2]
    task.logits(first[0], "train")
    carried = task.logits(second[0], "train")
    state = task._state["train"]
    assert not state[0].requires_grad  # detached: gradients stop at the window's start (truncated BPTT)
    whole, _ = task.net.forward_with_state(torch.cat([first[0], second[0]], 1), None)
    assert torch.allclose(carried, whole[:, 8:], atol=1e-5)
    fresh = task.net(second[0])
    assert not torch.allclose(carried, fresh, atol=1e-3)


@pytest.mark.slow
def test_lstm_solves_a_short_adding_problem(workdir, dlfound_in_process):
    dlfound_in_process(
        [
            "train",
            "experiment=adding_lstm",
            "data.seq_len=10",
            "data.n_train=4000",
            "data.n_val=500",
            "data.n_test=500",
            "data.batch_size=50",
            "model.hidden_size=32",
            "optim.lr=1e-2",
            "trainer.max_epochs=4",
            *FAST,
        ],
        workdir,
        check=True,
    )
    results = read_results(run_folders(workdir / "outputs")[-1])
    assert results["choices"]["task"] == "regression"
    assert results["metrics"]["test/mse"] < 0.03  # always answering 1 scores 1/6


@pytest.mark.slow
def test_seq2seq_learns_to_sort_and_shows_its_attention(workdir, dlfound_in_process):
    dlfound_in_process(
        [
            "train",
            "experiment=addition_seq2seq",
            "data=sorting",
            "data.length=3",
            "data.n_train=800",
            "data.n_val=100",
            "data.n_test=100",
            "data.batch_size=32",
            "model.hidden_size=32",
            "optim.lr=1e-2",
            "trainer.max_epochs=4",
            *FAST,
        ],
        workdir,
        check=True,
    )
    run = run_folders(workdir / "outputs")[-1]
    metrics = read_results(run)["metrics"]
    assert metrics["test/exact"] > 0.8 and metrics["test/exact_beam"] > 0.8
    image = events(run).Images("attention/val_0")[-1]
    assert image.height == 16 * 4 and image.width == 16 * 3  # 3 digits and EOS down, 3 source digits across


@pytest.fixture
def stripes_mnist(workdir):
    """Fake MNIST whose digit d is a bright band at rows 2d..2d+5, plus noise: learnable in seconds."""
    rng = np.random.default_rng(0)

    def digits(n):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for image, d in zip(images, labels, strict=True):
            image[2 * d : 2 * d + 6, 4:24] = 255
        return images, labels

    write_idx(workdir / "data" / "MNIST" / "raw", "train", *digits(600))
    write_idx(workdir / "data" / "MNIST" / "raw", "t10k", *digits(200))


@pytest.mark.slow
def test_ctc_reads_digit_strips_and_shows_them_decoded(workdir, stripes_mnist, dlfound_in_process):
    dlfound_in_process(
        [
            "train",
            "experiment=mnist_strips_ctc",
            "data.k=3",
            "data.n_train=1200",
            "data.n_val=100",
            "data.n_test=100",
            "data.val_size=100",
            "data.batch_size=32",
            "model.channels=[8,16,16]",
            "model.hidden_size=32",
            "model.num_layers=1",
            "optim.lr=1e-2",
            "trainer.max_epochs=8",
            "task.beam_size=4",
            *FAST,
        ],
        workdir,
        check=True,
    )
    run = run_folders(workdir / "outputs")[-1]
    metrics = read_results(run)["metrics"]
    assert metrics["test/ler"] < 0.3 and metrics["test/ler_beam"] <= metrics["test/ler"] + 0.05  # from 1.0
    assert events(run).Images("strips/val_decoded")


@pytest.mark.slow
def test_mnist_rows_with_an_rnn_refuses_images(workdir, stripes_mnist, dlfound_in_process):
    dlfound_in_process(
        [
            "train",
            "data=mnist_rows",
            "model=gru",
            "model.hidden_size=16",
            "data.val_size=100",
            "trainer.max_epochs=1",
            *FAST,
        ],
        workdir,
        check=True,
    )
    assert "test/acc" in read_results(run_folders(workdir / "outputs")[-1])["metrics"]
    proc = dlfound_in_process(["train", "data=mnist", "model=lstm", "data.val_size=100", *FAST], workdir)
    assert proc.returncode != 0 and "data=mnist_rows" in proc.stderr and "Traceback" not in proc.stderr
