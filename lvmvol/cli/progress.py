"""A progress bar on stderr for long operations such as in-place encryption."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    from lvmvol.crypt import ProgressCallback, ReencryptProgress


@contextlib.contextmanager
def progress_bar(description: str) -> Iterator[ProgressCallback | None]:
    """Yield a callback that draws a rich progress bar on stderr; None when stderr is no terminal.

    The bar shows bytes done, the rate and the time left. Its rate counts
    only this run, so a resumed operation that starts at 60 % does not show
    a burst of speed.
    """
    if not sys.stderr.isatty():
        yield None
        return

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(description, total=None)
        started = False

        def update(progress: ReencryptProgress) -> None:
            nonlocal started
            if not started:
                # reset() starts the rate estimate at the first report's position.
                bar.reset(task, total=progress.total_bytes, completed=progress.done_bytes)
                started = True
                return
            bar.update(task, total=progress.total_bytes, completed=progress.done_bytes)

        yield update
