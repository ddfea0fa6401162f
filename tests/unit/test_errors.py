"""Error kinds, their exit codes and messages: lvmvol.errors."""

from __future__ import annotations

import pytest

from lvmvol.errors import (
    CommandError,
    CommandTimeout,
    ConfigError,
    Conflict,
    DeviceTimeout,
    InvalidInput,
    LockTimeout,
    LvmvolError,
    NotFound,
)


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (InvalidInput, 2),
        (ConfigError, 2),
        (NotFound, 3),
        (Conflict, 4),
        (DeviceTimeout, 6),
        (LockTimeout, 7),
    ],
)
def test_exit_codes(kind: type[LvmvolError], code: int) -> None:
    assert kind("x").exit_code == code


def test_command_error_exit_code() -> None:
    assert CommandError(["lvs"], 5, "", 0.1).exit_code == 5


def test_command_timeout_exit_code() -> None:
    assert CommandTimeout(["lvs"], 2.0).exit_code == 6


def test_message_with_hint() -> None:
    assert str(InvalidInput("bad value", "use another")) == "bad value; use another"


def test_message_without_hint() -> None:
    assert str(NotFound("gone")) == "gone"


def test_command_error_last_line() -> None:
    error = CommandError(["lvcreate", "x"], 5, "  first\n\n  Insufficient free space.\n\n", 0.5)
    assert str(error) == "lvcreate failed with exit code 5: Insufficient free space."


def test_command_error_skips_fd_warnings() -> None:
    stderr = (
        "  Volume group \"vg\" not found\n"
        "File descriptor 7 (/dev/pts/0) leaked on lvs invocation. Parent PID 1: bash\n"
    )
    error = CommandError(["lvs"], 5, stderr, 0.1)
    assert str(error) == 'lvs failed with exit code 5: Volume group "vg" not found'


def test_command_error_skips_help_pointer() -> None:
    stderr = "  Invalid argument for --size: 0b\n  Run `lvcreate --help' for more information.\n"
    error = CommandError(["lvcreate"], 3, stderr, 0.1)
    assert str(error) == "lvcreate failed with exit code 3: Invalid argument for --size: 0b"


def test_command_error_only_fd_warnings() -> None:
    error = CommandError(["lvs"], 5, "File descriptor 3 leaked on lvs invocation.\n", 0.1)
    assert str(error) == "lvs failed with exit code 5"


def test_command_error_hint() -> None:
    error = CommandError(["lvremove"], 5, "in use\n", 0.1, hint="unmount it")
    assert str(error) == "lvremove failed with exit code 5: in use; unmount it"


def test_command_timeout_message() -> None:
    error = CommandTimeout(["mkfs.xfs", "/dev/x"], 120.0, "partial\n")
    assert error.message == "mkfs.xfs did not finish within 120 s and was killed"
    assert error.stderr == "partial\n"
    assert error.returncode == -1
    assert "command_timeout" in str(error)
