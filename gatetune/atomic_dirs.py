"""Directories that appear complete or not at all: checkpoints and exports are written beside their final
name under a hidden staging name and renamed into place when every file is there.

A directory that already has the final name is moved aside first (`.tmp-old-NAME`) and deleted after
the rename, so a crash leaves either the old directory or the new one under NAME, plus hidden leftovers
that the next write removes. Staging and final names are on the same filesystem (siblings), so the
rename is atomic.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

STAGING_PREFIX = ".tmp-"  # hidden names: never taken for a checkpoint or an export


def staging_path(final: Path) -> Path:
    """The fixed staging name beside `final` (used when every process must find the same directory)."""
    return final.with_name(f"{STAGING_PREFIX}{final.name}")


def publish_directory(staging: Path, final: Path) -> None:
    """Rename the finished `staging` directory to `final`, replacing a directory already there."""
    old = final.with_name(f"{STAGING_PREFIX}old-{final.name}")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(staging, final)
    shutil.rmtree(old, ignore_errors=True)


def write_directory_atomically(target: Path, write: Callable[[Path], None]) -> Path:
    """`write(staging)` into a fresh staging directory beside `target`, then publish it as `target`.
    If `write` raises, the staging directory is removed and `target` is left as it was."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{target.name}.", dir=target.parent))
    try:
        write(staging)
        publish_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target.resolve()
