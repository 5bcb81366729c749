"""The progress bar of ``wait``: one line on stderr."""

from __future__ import annotations

import sys
from typing import TextIO

from agentcore_sdk.models import JobStatusResult


class ProgressBar:
    """Redrawn in place on a terminal, else a new line whenever it changes."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = ""

    def update(self, status: JobStatusResult) -> None:
        line = render(status, self.width)
        if line == self._last:
            return
        if self.tty:
            self.stream.write("\r" + line.ljust(len(self._last)))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last = line

    def close(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()


def wants_progress(progress: bool | None) -> bool:
    """An explicit choice, else a progress bar only where someone watches (stderr is a terminal)."""
    return progress if progress is not None else sys.stderr.isatty()


def render(status: JobStatusResult, width: int = 30) -> str:
    percent = max(0.0, min(100.0, status.progress_percent))
    filled = int(width * percent / 100)
    bar = "#" * filled + "-" * (width - filled)
    return (
        f"{str(status.job_id)[:8]} [{bar}] {percent:5.1f}% "
        f"iter {status.current_iteration}/{status.total_iterations} "
        f"{status.status} ${status.cost_usd}/${status.budget_usd}"
    )
