"""Under `checks.engine`, only the main process runs the engine; the other ranks wait for its report.json. When
the main process fails, it leaves its error in the work directory (`failed.json`) and the waiting ranks stop with
it, where they used to wait forever; an error left by an earlier attempt is not taken for this one's."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("datatrove", reason="pip install 'datatrove>=0.10' (a gatetune dependency)")

from gatetune.engine_gates import FAILED, _process_start, _run_main, _wait_for  # noqa: E402
from gatetune.errors import UserError  # noqa: E402


def _later(seconds: float, action) -> threading.Thread:  # noqa: ANN001
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()), daemon=True)
    thread.start()
    return thread


def test_a_waiting_rank_stops_with_the_main_process_error(tmp_path: Path):
    message = "checks.engine=local: stage 1 sketch: task(s) 3 failed; see .../task_00003.log"

    def main() -> None:
        def fail() -> dict:
            raise UserError(message)

        with pytest.raises(UserError):
            _run_main(str(tmp_path), fail)

    thread = _later(0.3, main)
    outcome: list[BaseException | dict] = []

    def wait() -> None:
        try:
            outcome.append(_wait_for(str(tmp_path), poll=0.05))
        except UserError as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=wait, daemon=True)
    waiting.start()
    waiting.join(10)
    thread.join(5)
    assert not waiting.is_alive(), "the waiting rank still waits after the main process failed"
    assert str(outcome[0]) == f"the main process's data gates failed: {message}"
    assert json.loads((tmp_path / FAILED).read_text())["message"] == message


def test_an_earlier_attempts_error_is_not_this_ones_and_the_main_process_clears_it(tmp_path: Path):
    stale = {"time": _process_start() - 100.0, "message": "the previous attempt's malformed line"}
    (tmp_path / FAILED).write_text(json.dumps(stale))
    report = {"checks": {"dedup": {"passed": True}}}
    thread = _later(0.3, lambda: (tmp_path / "report.json").write_text(json.dumps(report)))
    assert _wait_for(str(tmp_path), poll=0.05) == report  # the waiting rank ignored the old error
    thread.join(5)
    assert _run_main(str(tmp_path), lambda: report) == report
    assert not (tmp_path / FAILED).exists()  # cleared when the main process starts; success leaves none
