"""Error kinds and the exit code each one maps to.

Every error that lvmvol raises on purpose is an ``LvmvolError``. Its message
names the value that is wrong and, where there is one, the next step. The CLI
prints the message as one line on stderr and exits with ``exit_code``; the
table of codes is in docs/exit-codes.md.
"""

from __future__ import annotations

import re
from typing import Sequence


class LvmvolError(Exception):
    """Base class: an expected failure with a message for the administrator."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}; {self.hint}"
        return self.message


class InvalidInput(LvmvolError):
    """A name, size, path or option value is invalid. Nothing was changed."""

    exit_code = 2


class ConfigError(InvalidInput):
    """The configuration file is missing a required value or contains an invalid one."""


class NotFound(LvmvolError):
    """A volume, snapshot, pool, device or key file does not exist."""

    exit_code = 3


class Conflict(LvmvolError):
    """The request conflicts with the current state.

    Examples: a volume exists with another specification, a volume is mounted
    or open, a device holds a signature.
    """

    exit_code = 4


class CommandError(LvmvolError):
    """An external command exited with a non-zero status.

    ``argv`` is already redacted: secrets never reach this object.
    """

    exit_code = 5

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int,
        stderr: str,
        duration: float,
        hint: str | None = None,
    ):
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        self.duration = duration
        detail = _last_meaningful_line(stderr)
        message = f"{self.argv[0]} failed with exit code {returncode}"
        if detail:
            message += f": {detail}"
        super().__init__(message, hint)


class CommandTimeout(CommandError):
    """An external command did not finish within its timeout and was killed."""

    exit_code = 6

    def __init__(self, argv: Sequence[str], timeout: float, stderr: str = ""):
        super().__init__(argv, -1, stderr, timeout)
        self.message = (
            f"{self.argv[0]} did not finish within {timeout:g} s and was killed"
        )
        self.hint = "raise command_timeout in the config file if the host is slow"


class DeviceTimeout(LvmvolError):
    """A device node did not appear (or go away) within the udev wait timeout."""

    exit_code = 6


class LockTimeout(LvmvolError):
    """Another lvmvol command holds the lock for longer than the lock timeout."""

    exit_code = 7


class ProblemsRemain(LvmvolError):
    """``lvmvol check`` found problems, and ``--repair`` was not given or could not fix them all."""

    exit_code = 8


class NotPermitted(LvmvolError):
    """A command that changes the system runs without root privileges. Nothing was changed.

    The code is ``EX_NOPERM`` from sysexits.h.
    """

    exit_code = 77


# Exit code of 'lvmvol activate' when some pool or volume did not come back;
# the rest came back and each failure was reported.
PARTIAL_ACTIVATION_EXIT = ProblemsRemain.exit_code


def _last_meaningful_line(stderr: str) -> str:
    """Return the last stderr line that explains a failure.

    lvm2's file-descriptor warnings and its "Run `lvcreate --help' for more
    information." pointer are skipped, because the reason stands before them.
    """
    lines = [
        line.strip()
        for line in stderr.splitlines()
        if line.strip() and "leaked on" not in line and not _HELP_POINTER.match(line.strip())
    ]
    return lines[-1] if lines else ""


_HELP_POINTER = re.compile(r"^Run `\S+ --help' for more information\.$")
