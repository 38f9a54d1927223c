"""Checkpoints and exports share one way of writing a directory: complete under its name, or not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatetune.atomic_dirs import publish_directory, staging_path, write_directory_atomically


def _write(files: dict[str, str]):
    def write(directory: Path) -> None:
        for name, text in files.items():
            (directory / name).write_text(text)
    return write


def test_a_directory_appears_complete_and_replaces_the_old_one(tmp_path: Path):
    target = tmp_path / "out" / "adapter"
    assert write_directory_atomically(target, _write({"a.txt": "1", "b.txt": "2"})) == target.resolve()
    assert sorted(p.name for p in target.iterdir()) == ["a.txt", "b.txt"]
    write_directory_atomically(target, _write({"c.txt": "3"}))
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]  # replaced, not merged
    assert [p.name for p in target.parent.iterdir()] == ["adapter"]  # no staging or old copy left


def test_a_write_that_fails_leaves_the_old_directory_and_no_staging(tmp_path: Path):
    target = tmp_path / "adapter"
    write_directory_atomically(target, _write({"a.txt": "old"}))

    def broken(directory: Path) -> None:
        (directory / "a.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_directory_atomically(target, broken)
    assert (target / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


def test_checkpoints_publish_their_fixed_staging_name(tmp_path: Path):
    final = tmp_path / "checkpoint-4"
    staging = staging_path(final)
    assert staging.name == ".tmp-checkpoint-4"
    staging.mkdir()
    (staging / "model.bin").write_text("new")
    final.mkdir()
    (final / "model.bin").write_text("older save of the same step")
    publish_directory(staging, final)
    assert (final / "model.bin").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint-4"]
