"""Stand-ins for the command runner and helpers to load the recorded lvm2 reports.

The unit tests never start lvm2, mkfs, losetup or any other system tool.
Operations and CLI commands get a ``FakeRunner``, which records each argv
and returns canned results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from lvmvol import lvm
from lvmvol.errors import CommandError
from lvmvol.runner import CommandResult, Runner, redact

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass
class Call:
    """One ``run()`` call that a ``FakeRunner`` received."""

    argv: list[str]
    mutating: bool
    input: str | bytes | None
    # True when dry-run skipped the command: it was only logged as "would run".
    dry_run: bool
    # The working directory a streaming command got, None for run().
    cwd: str | None = None
    timeout: float | None = None

    @property
    def command(self) -> str:
        return self.argv[0]


@dataclass
class Reply:
    """A canned result for one command name."""

    stdout: str = ""
    stderr: str = ""
    returncode: int = 0


class FakeRunner(Runner):
    """A ``Runner`` that records every call and returns canned results without starting a process.

    ``reply("lvs", Reply(stdout=...))`` sets what a command returns, and
    ``reply("cryptsetup isLuks", ...)`` what one subcommand returns; several
    replies are used in order and the last one repeats. A command without a
    reply exits 0 with empty output. An exit code outside ``ok_codes``
    raises ``CommandError`` as the real runner does.

    In dry-run mode, mutating commands go to ``Runner.run``, which logs
    "would run" and returns before it starts anything. If it ever did
    start one, the process guard in conftest.py fails the test.
    """

    def __init__(self, dry_run: bool = False):
        super().__init__(dry_run=dry_run)
        self.calls: list[Call] = []
        self._replies: dict[str, list[Reply]] = {}
        # The processes start_detached would have started, in order.
        self.detached: list[FakeDetached] = []

    def reply(self, command: str, *replies: Reply) -> None:
        self._replies[command] = list(replies)

    def reply_report(self, command: str, *file_names: str) -> None:
        """Make ``lvs``, ``vgs`` or ``pvs`` return recorded reports from tests/unit/data."""
        self.reply(command, *(Reply(stdout=read_data(name)) for name in file_names))

    def run(
        self,
        argv: Sequence[str],
        *,
        mutating: bool,
        input: str | bytes | None = None,
        timeout: float | None = None,
        ok_codes: Sequence[int] = (0,),
    ) -> CommandResult:
        argv = [str(arg) for arg in argv]
        skipped = mutating and self.dry_run
        self.calls.append(Call(argv, mutating, input, skipped))
        if skipped:
            return super().run(argv, mutating=True, input=input, timeout=timeout, ok_codes=ok_codes)

        reply = self._next_reply(argv)
        result = CommandResult(redact(argv), reply.returncode, reply.stdout, reply.stderr, 0.0)
        self.history.append(result)
        if reply.returncode not in ok_codes:
            raise CommandError(result.argv, reply.returncode, reply.stderr, 0.0)
        return result

    def run_streaming(
        self,
        argv: Sequence[str],
        *,
        mutating: bool,
        on_line: Callable[[str], None],
        input: str | bytes | None = None,
        timeout: float | None = None,
        cwd: str | None = None,
        ok_codes: Sequence[int] = (0,),
        stop_grace: float = 0.0,
    ) -> CommandResult:
        """Record the call like ``run`` and pass each line of the canned stdout to ``on_line``.

        A reply's lines all reach ``on_line`` before its exit code is checked,
        as with a real command that reports progress and then fails.
        """
        argv = [str(arg) for arg in argv]
        skipped = mutating and self.dry_run
        self.calls.append(Call(argv, mutating, input, skipped, cwd, timeout))
        if skipped:
            return super().run(argv, mutating=True, input=input, timeout=timeout, ok_codes=ok_codes)

        reply = self._next_reply(argv)
        for line in reply.stdout.splitlines():
            on_line(line)
        result = CommandResult(redact(argv), reply.returncode, reply.stdout, reply.stderr, 0.0)
        self.history.append(result)
        if reply.returncode not in ok_codes:
            raise CommandError(result.argv, reply.returncode, reply.stderr, 0.0)
        return result

    def start_detached(self, argv: Sequence[str], *, mutating: bool) -> FakeDetached | None:
        """Record the call like ``run`` and return a ``FakeDetached`` that records what it is told."""
        argv = [str(arg) for arg in argv]
        skipped = mutating and self.dry_run
        self.calls.append(Call(argv, mutating, None, skipped))
        if skipped:
            return None
        detached = FakeDetached(argv)
        self.detached.append(detached)
        return detached

    def _next_reply(self, argv: list[str]) -> Reply:
        """Return the reply for "COMMAND SUBCOMMAND" (such as "cryptsetup isLuks"), else for COMMAND."""
        key = f"{argv[0]} {argv[1]}" if len(argv) > 1 and f"{argv[0]} {argv[1]}" in self._replies else argv[0]
        queue = self._replies.get(key, [])
        if len(queue) > 1:
            return queue.pop(0)
        return queue[0] if queue else Reply()

    def commands(self) -> list[str]:
        """Return the command name of every call, in order."""
        return [call.command for call in self.calls]

    def executed_mutating(self) -> list[list[str]]:
        """Return the argv of every mutating command that was not skipped by dry-run."""
        return [call.argv for call in self.calls if call.mutating and not call.dry_run]

    def calls_of(self, command: str) -> list[Call]:
        return [call for call in self.calls if call.command == command]


@dataclass
class FakeDetached:
    """What ``Runner.start_detached`` would have started: records the line it was sent and whether it finished."""

    argv: list[str]
    line: str | None = None
    finished: bool = False

    def finish(self, line: str | None = None, wait: float = 5.0) -> None:
        self.line = line
        self.finished = True


def read_data(name: str) -> str:
    return (DATA_DIR / name).read_text()


def report_rows(name: str, kind: str) -> list[dict[str, str]]:
    """Return the rows of a recorded report file, as ``lvm.parse_report`` reads them."""
    return lvm.parse_report(read_data(name), kind)


def lv_row(name: str, file_name: str = "lvs_smokevg.json") -> dict[str, str]:
    """Return a copy of the recorded ``lvs`` row of the LV called ``name``."""
    for row in report_rows(file_name, "lv"):
        if row["lv_name"] == name:
            return dict(row)
    raise KeyError(f"no LV {name!r} in {file_name}")


def lvs_output(*rows: dict[str, str]) -> str:
    """Return ``rows`` as the JSON document ``lvs --reportformat json`` prints."""
    return json.dumps({"report": [{"lv": list(rows)}]})
