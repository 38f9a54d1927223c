"""The model card (`README.md`) written into every export: what was trained, on what, how, and how to serve it."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("gatetune", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "tokenizers")


def sha256_of(path: str) -> str | None:
    """SHA-256 of a local file (or of a folder's files in name order); None for a hub dataset. Computed once per
    content state (the files' paths, sizes and modification times): a run asks at its start (the resume record)
    and at export (the model card)."""
    source = Path(path)
    files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file()) \
        if source.is_dir() else []
    if not files:
        return None
    return _digest(tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


@functools.lru_cache(maxsize=64)
def _digest(files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in files:
        with Path(name).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str:
    """The project's commit, with `+dirty` when the work tree has changes; `unknown` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}+dirty" if dirty else commit


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _template_lines(export: dict[str, Any]) -> list[str]:
    """What the chat template did in training: its arguments, whether it replaced the base's, its notes."""
    from data_checks.template import NOTE_TEXT

    lines = ["## Chat template", ""]
    kwargs = export.get("chat_template_kwargs") or {}
    lines.append("Rendered with " + (f"`{kwargs}` (serve with the same `--default-chat-template-kwargs`)"
                                     if kwargs else "the template's default arguments") + ".")
    if export.get("chat_template_replaced"):
        lines.append("The template replaced the base tokenizer's (`model.chat_template`); it is saved here as "
                     "`chat_template.jinja`.")
    notes = export.get("template_notes") or {}
    if notes:
        lines += ["", "What the template did to the training data (records):", ""]
        lines += [f"- {NOTE_TEXT.get(note, note)} ({count})" for note, count in sorted(notes.items())]
    return [*lines, ""]


def render_model_card(run: dict[str, Any], export: dict[str, Any]) -> str:
    """Markdown for one export. `run`: recipe, base_model, config_yaml, datasets, gates, metrics."""
    lines = [
        "---", "library_name: peft" if export["kind"] == "adapter" else "library_name: transformers",
        f"base_model: {export['base_model']}", "tags: [gatetune, " + run["recipe"] + "]", "---", "",
        f"# {run['recipe']} fine-tune of {export['base_model']}", "",
        f"Export kind: **{export['kind']}**. Trained with the `gatetune` toolkit, recipe `{run['recipe']}`.", "",
        "## Serve it with vLLM", "", "```bash", export["vllm_command"], "```", "",
        f"Stop tokens (generation_config.json `eos_token_id`): {export['stop_token_ids']}.", "",
        *_template_lines(export),
        "## Data", "", "| file | SHA-256 | records |", "|---|---|---|",
    ]
    for d in run["datasets"]:
        lines.append(f"| `{d['path']}` | `{d['sha256'] or 'hub dataset, not hashed'}` | {d['records']} |")
    gates = run.get("gates")
    lines += ["", "## Data gates", ""]
    if gates is None:
        lines.append("The data gates were switched off for this run (`checks.enabled=false`).")
    else:
        lines.append(f"Overall: {'passed' if gates['passed'] else 'FAILED'}.")
        lines.append("")
        for name, result in gates["checks"].items():
            lines.append(f"- `{name}`: {'passed' if result['passed'] else 'failed'}")
    lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
    for key, value in run["metrics"].items():
        if not isinstance(value, (list, dict)):
            lines.append(f"| {key} | {_fmt(value)} |")
    lines += ["", "## Versions", "", f"- project commit: `{run['git_commit']}`"]
    lines += [f"- {name} {version}" for name, version in run["versions"].items()]
    lines += ["", "## Resolved configuration", "", "```yaml", run["config_yaml"].rstrip(), "```", ""]
    return "\n".join(lines)
