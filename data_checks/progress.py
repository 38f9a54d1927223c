"""Progress bars for long passes: tqdm when installed and the data is large enough to wait for."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sized
from typing import TypeVar

T = TypeVar("T")
MIN_ITEMS_FOR_BAR = 2000


def progress(items: Iterable[T], desc: str) -> Iterable[T]:
    total = len(items) if isinstance(items, Sized) else None
    if os.environ.get("DATA_CHECKS_NO_PROGRESS") or (total is not None and total < MIN_ITEMS_FOR_BAR):
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return items
    # A stream's length is unknown: show its bar only once it has run a while, as a sized one does from 2000 items.
    return tqdm(items, desc=desc, total=total, leave=False, delay=0 if total is not None else 2.0)
