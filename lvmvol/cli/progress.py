"""Progress on stderr for slow steps: a bar for in-place encryption, a spinner for the others.

Both show only when stderr is a terminal, so scripts and logs never get
their control sequences.
"""

from __future__ import annotations

import contextlib
import logging
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


@contextlib.contextmanager
def status_spinner(description: str) -> Iterator[None]:
    """Show a rich spinner with ``description`` on stderr while the block runs.

    Nothing is drawn when stderr is no terminal, or when --verbose or
    --debug log each command to stderr, because the log lines would break
    the spinner's line. The block must not prompt: a question would be
    drawn over by the spinner.
    """
    if not sys.stderr.isatty() or logging.getLogger("lvmvol").isEnabledFor(logging.INFO):
        yield
        return

    from rich.console import Console

    with Console(stderr=True).status(description):
        yield
