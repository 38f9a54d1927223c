"""Errors a user can cause with their data, each naming the file and line."""

from __future__ import annotations


class DataError(Exception):
    """Unreadable or malformed input: `path:line: what is wrong`."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple:  # pickled whole: a worker process's error reaches its parent as it was raised
        return (type(self), (self.path, self.line, self.problem))
