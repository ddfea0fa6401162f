"""The one place where lvmvol starts external processes.

Every command runs from an argv list (never a shell) with ``LC_ALL=C``, closed
standard input unless the caller passes input, and a timeout. A non-zero exit
raises ``CommandError`` with the redacted argv, the exit code, stderr and the
duration. Each command is logged on the ``lvmvol.runner`` logger before it
runs (INFO) and after it ends (DEBUG); ``--verbose`` shows the INFO lines.

With ``dry_run`` set, commands that change the system are logged as
"would run" and not started; commands that only read still run.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from typing import Sequence

from lvmvol.errors import CommandError, CommandTimeout

log = logging.getLogger("lvmvol.runner")

DEFAULT_TIMEOUT = 120.0


class Secret(str):
    """An argv element that is shown as ``<redacted>`` in logs and errors."""


def redact(argv: Sequence[str]) -> list[str]:
    return ["<redacted>" if isinstance(arg, Secret) else str(arg) for arg in argv]


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    duration: float
    dry_run: bool = False


@dataclass
class Runner:
    """Runs external commands; holds the options that apply to every call."""

    timeout: float = DEFAULT_TIMEOUT
    dry_run: bool = False
    history: list[CommandResult] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        mutating: bool,
        input: str | bytes | None = None,
        timeout: float | None = None,
        ok_codes: Sequence[int] = (0,),
    ) -> CommandResult:
        """Run ``argv`` and return its result.

        ``mutating`` marks a command that changes the system: dry-run skips
        it. An exit code outside ``ok_codes`` raises ``CommandError``, and
        passing the timeout raises ``CommandTimeout``. ``input`` goes to the
        command's standard input and is never logged.
        """
        argv = list(argv)
        shown = shlex.join(redact(argv))
        if mutating and self.dry_run:
            log.info("would run: %s", shown)
            result = CommandResult(redact(argv), 0, "", "", 0.0, dry_run=True)
            self.history.append(result)
            return result

        log.info("run: %s", shown)
        limit = self.timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            completed = subprocess.run(
                [str(arg) for arg in argv],
                input=input.encode("utf-8") if isinstance(input, str) else input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                env=_command_environment(),
                timeout=limit,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            stderr = _text(error.stderr)
            log.debug("timed out after %.1f s: %s", limit, shown)
            raise CommandTimeout(redact(argv), limit, stderr) from None
        except FileNotFoundError:
            raise CommandError(
                redact(argv),
                127,
                f"{argv[0]}: command not found",
                0.0,
                hint=f"install the package that provides {argv[0]}",
            ) from None
        duration = time.monotonic() - started

        result = CommandResult(
            redact(argv),
            completed.returncode,
            _text(completed.stdout),
            _text(completed.stderr),
            duration,
        )
        self.history.append(result)
        log.debug("exit %d after %.3f s: %s", result.returncode, duration, shown)
        if result.returncode not in ok_codes:
            raise CommandError(result.argv, result.returncode, result.stderr, duration)
        return result


def _command_environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment["LC_ALL"] = "C"
    environment.pop("LANGUAGE", None)
    # lvm2 warns on stderr about every inherited descriptor. subprocess closes
    # them, but a caller's wrapper may not; the warning is noise either way.
    environment["LVM_SUPPRESS_FD_WARNINGS"] = "1"
    return environment


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value
