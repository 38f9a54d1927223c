"""`gatetune init [DIR]`: write a starter config folder for a user's own presets, beside their data.

The folder holds one file per config group you are likely to add (a model, a dataset, a recipe, a
reward), each a copy of a bundled preset's shape with comments. Hydra finds it with `--config-dir DIR`
(or `hydra.searchpath=[file://DIR]`), next to the presets inside the installed package, which stay
untouched: `gatetune train --config-dir DIR model=my_model data=my_data recipe=my_recipe`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FILES: dict[str, str] = {
    "model/my_model.yaml": """\
# A model preset: `model=my_model`. Copy the shape of any file in the package's conf/model/.
name: my-model                 # shown in run names, model cards and summaries
path: Qwen/Qwen2.5-0.5B-Instruct   # a hub ID (downloaded on first use) or a local directory
# context_length: 32768        # the model's window; data.max_length is checked against it
# chat_template: my_template.jinja   # a template file (path or bundled name) to train and serve with
""",
    "data/my_data.yaml": """\
# A dataset preset: `data=my_data`. Any field can also be set on the command line (data.path=...).
name: my-data
path: data/train.jsonl         # JSONL, JSON, CSV or Parquet; relative to where you run gatetune
# eval_path: data/eval.jsonl   # else a seeded share of the training file is held out
format: auto                   # auto, chat, alpaca, prompt_completion, preference, prompt
task_type: generation          # generation, classification or extraction (sets LoRA rank defaults)
max_length: 2048
""",
    "recipe/my_recipe.yaml": """\
# @package _global_
# A recipe: `recipe=my_recipe`. This one starts from the bundled lora recipe and changes a few keys;
# every key of the composed config (`gatetune train --cfg job`) can be set here.
defaults:
  - lora
  - _self_

recipe:
  name: my_recipe
lora:
  rank: 32
training:
  learning_rate: 1.0e-4
  epochs: 2
""",
    "reward/my_reward.yaml": """\
# A GRPO reward, named by path: grpo.rewards=[my_conf/reward/my_reward.yaml] (bundled ones by name).
# Any Python function with TRL's reward signature works as `_target_`; this one is a bundled verifier.
_target_: gatetune.rewards.verified
_partial_: true
verifier: exact_match
""",
    "README.md": """\
# My gatetune presets

    gatetune train --config-dir {dir} model=my_model data=my_data recipe=my_recipe
    gatetune train --config-dir {dir} --cfg job        # print the composed config, run nothing
    gatetune train --config-dir {dir} --help           # your presets appear beside the bundled ones

Files here add to the bundled presets. A file with a bundled preset's name replaces that preset for
runs that use this folder.
""",
}


def write_starter(directory: Path, force: bool = False) -> list[Path]:
    """Write the starter files into `directory` (created); refuses to overwrite a file unless `force`."""
    existing = [directory / name for name in FILES if (directory / name).exists()]
    if existing and not force:
        raise FileExistsError(f"{existing[0]} exists; pick another folder or pass --force to overwrite")
    written = []
    for name, text in FILES.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text.replace("{dir}", str(directory)), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gatetune init", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", default="gatetune_conf", type=Path,
                        help="the folder to write (default: ./gatetune_conf)")
    parser.add_argument("--force", action="store_true", help="overwrite the starter files if they exist")
    args = parser.parse_args(argv)
    try:
        written = write_starter(args.directory, args.force)
    except (FileExistsError, OSError) as exc:
        print(f"gatetune init: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} files to {args.directory}/:")
    for path in written:
        print(f"  {path}")
    print(f"use them with: gatetune train --config-dir {args.directory} model=my_model data=my_data recipe=my_recipe")
    return 0
