"""`loss.png` (train and eval loss against optimizer steps, from the trainer's log history) and `eval.png`
(each evaluation metric, base beside tuned)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_losses(log_history: list[dict[str, Any]], out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    evaluation = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train, strict=False), label="train loss", alpha=0.8)
    if evaluation:
        ax.plot(*zip(*evaluation, strict=False), "o-", label="eval loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, out)


def plot_eval(tuned: dict[str, Any], base: dict[str, Any] | None, out: Path) -> Path:
    """`eval.png`: each metric of the tuned model beside the base model's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k, v in tuned.items() if v is not None]
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(names) + 2), 4))
    positions = range(len(names))
    width = 0.38 if base else 0.6
    if base:
        ax.bar([p - width / 2 for p in positions], [base.get(n) or 0 for n in names], width, label="base")
    ax.bar([p + (width / 2 if base else 0) for p in positions], [tuned[n] for n in names], width, label="tuned")
    ax.set_xticks(list(positions), names)
    ax.set_ylabel("score")
    ax.set_ylim(0, max([1.0, *(tuned[n] for n in names)]))
    ax.set_title("evaluation: base vs tuned")
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    return _save(fig, out)


def _save(fig: Any, out: Path) -> Path:
    """Write the figure to a temporary file beside `out`, then rename it into place."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out
