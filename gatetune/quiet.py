"""Library messages that tell a user nothing, dropped where they are made; every other warning still shows.

Each entry names the library's logger (or warning), the message, and why it says nothing to our users.
Nothing is silenced by level or by logger as a whole: a filter drops exactly these messages.
"""

from __future__ import annotations

import logging
import warnings

# (logger name, message start, why it is noise)
LOG_NOISE: tuple[tuple[str, str, str], ...] = (
    ("DeepSpeed", "Setting accelerator to CPU",
     "printed on every import of deepspeed on a machine without a GPU; a CPU run knows it is one"),
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community",
     "bitsandbytes tries an optional kernel from the Hugging Face hub on import; its fallback is the one used"),
)
# (category, message regex, why it is noise)
WARNING_NOISE: tuple[tuple[type[Warning], str, str], ...] = (
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated",
     "peft and TRL read transformers' old property name (not our code); nothing for the user to change"),
)


class DropMessages(logging.Filter):
    """Drops the records of one logger whose message starts with one of `starts`."""

    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


def quiet_library_noise() -> None:
    """Install the filters (once per process; calling again changes nothing)."""
    by_logger: dict[str, list[str]] = {}
    for name, start, _ in LOG_NOISE:
        by_logger.setdefault(name, []).append(start)
    for name, starts in by_logger.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMessages) for f in logger.filters):
            logger.addFilter(DropMessages(tuple(starts)))
    for category, message, _ in WARNING_NOISE:  # filterwarnings drops its own duplicate and puts this one first
        warnings.filterwarnings("ignore", message=message, category=category)
