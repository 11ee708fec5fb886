"""A progress bar on stderr for long replays (stdout keeps the plan and the JSON line)."""

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RichProgress:
    """Shown when stderr is a terminal, or else from `threshold` records on (a log then
    gets the final state of the bar)."""

    def __init__(self, *, threshold: int, console: Console | None = None) -> None:
        self._threshold = threshold
        self._console = console or Console(stderr=True)
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def begin(self, description: str, total: int) -> None:
        self.end()
        if total <= 0 or (total < self._threshold and not self._console.is_terminal):
            return
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._bar.start()
        self._task = self._bar.add_task(description, total=total)

    def advance(self, count: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, count)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        self._bar = self._task = None
