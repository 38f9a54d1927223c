"""Checkpoints that are either complete or ignored, and the choice of which one a run resumes from.

A checkpoint is written into a hidden staging directory (`.tmp-checkpoint-N`) by every process,
then the main process records each file with its size and CRC32 in `checkpoint_manifest.json` and renames
the directory to `checkpoint-N`. A checkpoint is complete when its manifest is there and every file it
lists has the recorded size and checksum; anything else (a crash mid-save, a file truncated, deleted or
overwritten by hand, a bad disk block) is skipped with a warning and the one before it is used. Checking the
checksums reads the checkpoint once per process (CRC32 runs at about 2.8 GB/s a thread);
`resume.verify=sizes` checks sizes only. The run directory must be on a filesystem every node sees (as on SLURM).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gatetune.atomic_dirs import publish_directory, staging_path
from gatetune.errors import ConfigError
from gatetune.resume_check import write_record
from gatetune.signals import any_process_signalled

log = logging.getLogger(__name__)

MANIFEST = "checkpoint_manifest.json"
CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
RESUME_AUTO, RESUME_NEVER = "auto", "never"
VERIFY_CHECKSUMS, VERIFY_SIZES = "checksums", "sizes"
_CHUNK = 8 << 20


def checkpoints_dir(run_dir: Path) -> Path:
    """Where the trainer writes checkpoints (TrainingArguments.output_dir)."""
    return run_dir / "checkpoints"


def crc32_of(path: Path) -> str:
    """The CRC32 of a file's bytes, as 8 hex digits (zlib releases the GIL: files are checked in threads)."""
    crc = 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


def _crc32_all(directory: Path, names: list[str]) -> dict[str, str]:
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return dict(zip(names, pool.map(lambda name: crc32_of(directory / name), names), strict=True))


def write_manifest(directory: Path, step: int) -> None:
    """Record every file under `directory` with its size and CRC32; written last, atomically."""
    files = {str(p.relative_to(directory)): p.stat().st_size
             for p in sorted(directory.rglob("*")) if p.is_file() and p.name != MANIFEST}
    tmp = directory / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"step": step, "files": files, "crc32": _crc32_all(directory, list(files))}, indent=1))
    os.replace(tmp, directory / MANIFEST)


def incomplete_reason(directory: Path, verify: str = VERIFY_CHECKSUMS) -> str | None:
    """Why `directory` is not a checkpoint to resume from, or None when it is complete: every file of its manifest
    is there with its size, and (verify=checksums, for manifests that record them) its CRC32."""
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return f"no {MANIFEST} (the save did not finish)"
    try:
        recorded = json.loads(manifest.read_text())
        files, checksums = recorded["files"], recorded.get("crc32")
    except (ValueError, KeyError, TypeError) as exc:
        return f"unreadable {MANIFEST}: {exc}"
    if "trainer_state.json" not in files:
        return "no trainer_state.json"
    for name, size in files.items():
        path = directory / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {size} were written"
    if verify == VERIFY_CHECKSUMS and checksums:
        found = _crc32_all(directory, list(checksums))
        for name, crc in checksums.items():
            if found[name] != crc:
                return f"{name} is corrupted (CRC32 {found[name]}, {crc} was written)"
    return None


def checkpoint_step(directory: Path) -> int:
    match = CHECKPOINT_PATTERN.match(directory.name)
    if match is None:
        raise ValueError(f"{directory} is not named checkpoint-<step>")
    return int(match.group(1))


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoint directories, complete or not, oldest step first."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and CHECKPOINT_PATTERN.match(p.name)]
    return sorted(found, key=checkpoint_step)


def latest_complete(run_dir: Path, verify: str = VERIFY_CHECKSUMS) -> Path | None:
    """The complete checkpoint with the highest step; incomplete ones on the way are logged and skipped."""
    for directory in reversed(list_checkpoints(run_dir)):
        reason = incomplete_reason(directory, verify)
        if reason is None:
            return directory
        log.warning("skipping incomplete checkpoint %s: %s", directory, reason)
    return None


def resume_checkpoint(resume: str, run_dir: Path, verify: str = VERIFY_CHECKSUMS) -> Path | None:
    """The checkpoint `resume` (auto | never | PATH) asks for, or None to start from scratch. Nothing is changed
    on disk: `discard_after` does that once the run is known to go ahead."""
    if resume == RESUME_NEVER:
        return None
    if resume == RESUME_AUTO:
        checkpoint = latest_complete(run_dir, verify)
        if checkpoint is not None:
            log.info("resuming from %s (resume=auto: the latest complete checkpoint of this run)", checkpoint)
        return checkpoint
    checkpoint = Path(resume)
    if not checkpoint.is_dir():
        raise ConfigError("resume.checkpoint", f"{resume!r} is not a directory (use auto, never or a checkpoint path)")
    reason = incomplete_reason(checkpoint, verify)
    if reason is not None:
        raise ConfigError("resume.checkpoint", f"{checkpoint} is not a complete checkpoint: {reason}")
    log.info("resuming from %s (resume.checkpoint=PATH)", checkpoint)
    return checkpoint


def discard_after(run_dir: Path, checkpoint: Path | None, resume: str) -> None:
    """Delete the run directory's checkpoints from after `checkpoint` (all of them when starting from scratch):
    they belong to a line of training that is being abandoned, or are incomplete, and a later `resume=auto` must
    not pick one up. The main process calls it."""
    step = checkpoint_step(checkpoint) if checkpoint is not None else -1
    later = [p for p in list_checkpoints(run_dir) if checkpoint_step(p) > step]
    if later:
        log.warning("resume %s: deleting %s, from after the point this run continues from",
                    resume, ", ".join(p.name for p in later))
    for path in later:
        shutil.rmtree(path)


class AtomicCheckpointMixin:
    """Mixed into the TRL trainer class: `_save_checkpoint` writes to staging, then renames.

    Everything transformers' own `_save_checkpoint` saves is saved (model or adapter, optimizer,
    scheduler, scaler, every process's RNG state, trainer state with the stateful callbacks such as
    early stopping); only the place it is written, the manifest and the run's training settings
    (`training_record`, set on the trainer by the run: gatetune/resume_check.py) differ.
    """

    def _save_checkpoint(self: Any, model: Any, trial: Any) -> None:
        from transformers.trainer_callback import ExportableState
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

        root = Path(self._get_output_dir(trial=trial))
        final = root / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staging = staging_path(final)
        if self.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)  # left by a save that was killed
        self.accelerator.wait_for_everyone()

        failure = None
        try:
            self.store_flos()
            self.save_model(str(staging), _internal_call=True)
            if not self.args.save_only_model:
                self._save_optimizer_and_scheduler(str(staging))
                self._save_scaler(str(staging))
                self._save_rng_state(str(staging))  # every process writes its own
        except Exception as exc:  # a full disk, a quota, a read-only filesystem (OSError, or the writer's own error)
            failure = exc
        # Every process learns whether any failed (one all-reduce), so all discard the save together.
        if any_process_signalled(failure is not None, self.args.device):
            self._discard_failed_save(staging, final, failure)
        self.accelerator.wait_for_everyone()  # every process's files are in staging

        if self.state.best_global_step:
            best = root / f"{PREFIX_CHECKPOINT_DIR}-{self.state.best_global_step}"
            if best == final or best.is_dir():
                self.state.best_model_checkpoint = str(best)
        if self.args.should_save:
            for callback in [*self.callback_handler.callbacks, self.control]:
                if isinstance(callback, ExportableState):
                    name = callback.__class__.__name__
                    if isinstance(self.state.stateful_callbacks.get(name), list):
                        self.state.stateful_callbacks[name].append(callback.state())
                    else:
                        self.state.stateful_callbacks[name] = callback.state()
            self.state.save_to_json(str(staging / "trainer_state.json"))
            write_record(staging, getattr(self, "training_record", None))  # what a resume is compared with
            write_manifest(staging, self.state.global_step)
            publish_directory(staging, final)
            rotate_checkpoints(output_dir=str(root), save_total_limit=self.args.save_total_limit,
                               best_model_checkpoint=self.state.best_model_checkpoint)
        self.accelerator.wait_for_everyone()

    def _discard_failed_save(self: Any, staging: Path, final: Path, failure: Exception | None) -> None:
        if self.args.should_save:
            shutil.rmtree(staging, ignore_errors=True)
        previous = latest_complete(final.parent.parent, VERIFY_SIZES) if final.parent.name == "checkpoints" else None
        cause = (failure.strerror if isinstance(failure, OSError) and failure.strerror else str(failure)) \
            if failure is not None else "another process could not write its part"
        raise CheckpointWriteError(
            f"{final.name} could not be written ({cause}): the partial checkpoint is discarded and "
            + (f"{previous.name} stays the resume point" if previous else "there is no earlier checkpoint to resume "
               "from") + "; free space (or fix the filesystem) and run the same command to resume") from failure


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written; the partial one was removed and the previous one stays the resume point."""
