"""`gatetune`: one command with a subcommand per job, as `axolotl train` or `llamafactory-cli train`.

    gatetune train [GROUP=OPTION ...] [KEY=VALUE ...]   fine-tune (Hydra overrides; `gatetune train --help`)
    gatetune check DATA [...]                           the data gates alone (`data-checks`)
    gatetune export RUN_DIR [--merge]                   check or merge an exported adapter
    gatetune eval RUN_DIR [...]                         evaluate an export against its base model
    gatetune submit [OVERRIDES]                         a training run as a SLURM job
    gatetune serve RUN_DIR [--check]                    serve the export with vLLM; parity with transformers
    gatetune loadtest --url URL --model NAME            a bounded load test of an OpenAI-compatible server
    gatetune init [DIR]                                 write a starter config folder for your own presets

Each subcommand is the same code as its single command (`gatetune-train`, `data-checks`, `gatetune-export`,
`gatetune-eval`, `gatetune-submit`), which stay as aliases; so do the `finetune-*` names of the project's
first releases, which print a one-line notice.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

SUBCOMMANDS: dict[str, tuple[str, str]] = {  # name -> (module:function, one line of help)
    "train": ("gatetune.cli:main", "fine-tune: Hydra composes the recipe, the gates run, TRL trains, it is exported"),
    "check": ("data_checks.cli:main", "run the data gates on a dataset (no model, no torch)"),
    "export": ("gatetune.export:main", "check an exported adapter against vLLM's rules, or merge it into its base"),
    "eval": ("gatetune.evaluation.cli:main", "evaluate a run's export against its base model on held-out data"),
    "submit": ("gatetune.submit:main", "submit a training run to SLURM (sbatch), preemption-safe"),
    "serve": ("gatetune.serving.cli:serve_main", "serve a run's export with vLLM's OpenAI server (--check: parity)"),
    "loadtest": ("gatetune.serving.cli:loadtest_main", "load-test an OpenAI-compatible server: P50/P95, tokens/s"),
    "init": ("gatetune.init_config:main", "write a starter config folder (recipe, model, data, reward) to edit"),
}
LEGACY = {"finetune-train": "train", "finetune-export": "export", "finetune-eval": "eval", "finetune-submit": "submit"}


def version() -> str:
    """The installed distribution's version (or the source tree's, in a checkout without an install)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("gatetune")
    except PackageNotFoundError:
        return "0+source"


def _usage() -> str:
    width = max(map(len, SUBCOMMANDS))
    lines = [f"usage: gatetune {{{','.join(SUBCOMMANDS)}}} ...   (gatetune SUBCOMMAND --help for each)", "",
             "data-gated LLM fine-tuning: LoRA, QLoRA, full; SFT, DPO, GRPO; exports proven to serve", "",
             "subcommands:"]
    lines += [f"  {name:{width}s}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "options:", "  -h, --help     this message", "  -V, --version  the installed version", "",
              "examples:", "  gatetune train recipe=qlora model=qwen3_8b data.path=chats.jsonl",
              "  gatetune check chats.jsonl --html report.html", "  gatetune init my_conf && "
              "gatetune train --config-dir my_conf model=my_model data=my_data"]
    return "\n".join(lines)


def _load(target: str) -> Callable[..., object]:
    from importlib import import_module

    module, function = target.split(":")
    return getattr(import_module(module), function)


def run_subcommand(name: str, args: list[str]) -> int:
    """Run one subcommand with its arguments; its exit status."""
    entry = _load(SUBCOMMANDS[name][0])
    if name == "train":  # Hydra reads sys.argv itself; its --help and completion name the program so
        sys.argv = ["gatetune train", *args]
        entry()
        return 0
    status = entry(args)
    return int(status or 0)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        print(f"gatetune {version()}")
        return 0
    name = args[0]
    if name not in SUBCOMMANDS:
        close = [s for s in SUBCOMMANDS if s.startswith(name[:2])]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        print(f"gatetune: error: unknown subcommand {name!r} (choose from {', '.join(SUBCOMMANDS)}){hint}",
              file=sys.stderr)
        return 2
    return run_subcommand(name, args[1:])


def legacy_main() -> None:
    """`finetune-train` and friends: the first releases' names, kept so scripts written for them still run."""
    import os

    program = os.path.basename(sys.argv[0])
    name = LEGACY.get(program, "train")
    print(f"note: {program} is the old name of `gatetune {name}` (same arguments)", file=sys.stderr)
    sys.exit(run_subcommand(name, sys.argv[1:]))


def entry() -> None:
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:  # `gatetune --help | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 0
    sys.exit(status)


if __name__ == "__main__":  # python -m gatetune.main
    entry()
