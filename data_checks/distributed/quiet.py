"""datatrove logs every task at INFO to the console (the pipeline, its stats, a long traceback on error); under
`data-checks` the console is the engine's progress lines and one readable error. Imported by the stages, so it
holds in every task process (local or SLURM): each task's whole log, tracebacks included, still goes to
`<workdir>/logs/<stage>/logs/task_N.log`."""

from __future__ import annotations

import sys
from typing import Any

import datatrove.executor.base as _executor_base
import datatrove.utils.logging as _logging
from loguru import logger

FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"


def _task_log_file_only(logging_dir: Any, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
    """datatrove's `add_task_logger` without its console handler."""
    logger.remove()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    logger.add(logfile, colorize=False, level="DEBUG", format=FORMAT)
    logger.info(f"Launching pipeline for {rank=}")
    return logfile


def errors_only() -> None:
    """This process's datatrove logging: errors to the console, nothing else. datatrove puts its default logger
    back after each task that runs in this process (`close_task_logger`): this replaces that one too."""
    logger.remove()
    logger.add(sys.stderr, level="ERROR", format="{message}", backtrace=False, diagnose=False)


_executor_base.add_task_logger = _task_log_file_only
_logging.setup_default_logger = errors_only
