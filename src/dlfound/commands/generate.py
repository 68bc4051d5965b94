"""`dlfound generate ckpt_path=RUN/checkpoints/best.ckpt [prompt="ROMEO:"] [length=500] [...]`: stream text from a
language model's checkpoint.

The checkpoint carries its run's config, including the tokeniser of the training text (its characters, or its
BPE merges), so the network is rebuilt from the file alone (torch.load(weights_only=True)); the text file is not
needed. Options (key=value):
  prompt="\\n"        text to continue (a character model: every character must be in its vocabulary)
  length=500         tokens to generate (characters for a character model)
  temperature=1.0    below 1 sharper, above 1 more random
  top_k=null         sample only among the k most probable characters
  seed=0             random seed
  device=auto        cpu, cuda, or auto
  cache=true         a GPT keeps its keys and values, so each token costs one position's forward pass;
                     false re-reads the window every token (the same text within block_size tokens)
"""

import sys

from dlfound.errors import ConfigError, DlfoundError
from dlfound.runs.options import Option, parse_options, print_help_if_asked

USAGE = (
    'dlfound generate ckpt_path=PATH [prompt="ROMEO:"] [length=500] [temperature=1.0] [top_k=40] [seed=0] [device=auto]'
    " [cache=true]"
)
OPTIONS = {
    "ckpt_path": Option(required=True),
    "prompt": Option("\n"),
    "length": Option(500, int, minimum=1),
    "temperature": Option(1.0, float, above=0),
    "top_k": Option(None, int, minimum=1),
    "seed": Option(0, int),
    "device": Option("auto"),
    "cache": Option(True, bool),
}


def load_language_model(ckpt_path: str, device: str):
    from dlfound.runs.build import load_task
    from dlfound.runs.checkpoint import load_checkpoint, run_config

    ckpt = load_checkpoint(ckpt_path)
    cfg = run_config(ckpt, {})
    if not str(cfg["task"].get("_target_", "")).endswith("LanguageModelTask"):
        raise ConfigError(
            f"{ckpt_path} was trained by {cfg['task'].get('_target_')}; `dlfound generate` needs a "
            "language model's checkpoint, e.g. of `dlfound train experiment=shakespeare_char_gpt`"
        )
    _, task = load_task(ckpt, cfg, with_data=False)
    return task.to(device).eval()


def main(args: list[str]) -> None:
    if print_help_if_asked(args, __doc__):
        return
    from dlfound.runs.console import fail

    try:
        options, _ = parse_options(args, OPTIONS, "generate", USAGE)
        import torch

        from dlfound.runs.options import resolve_device

        device = resolve_device(options["device"])
        task = load_language_model(options["ckpt_path"], device)
        generator = torch.Generator(device=device).manual_seed(options["seed"])
        # Check the prompt before anything is printed, so that an error is the only output.
        characters = task.generate(
            options["prompt"], options["length"], options["temperature"], options["top_k"], generator, options["cache"]
        )
        first = next(characters)
    except DlfoundError as err:
        fail(str(err))
    sys.stdout.write(options["prompt"] + first)
    for character in characters:
        sys.stdout.write(character)
        sys.stdout.flush()
    sys.stdout.write("\n")
