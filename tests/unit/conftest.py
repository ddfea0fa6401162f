"""Fixtures for the unit tests: a fake runner, a guard against real processes, clean logging.

The unit tests run on any Linux host without root or device-mapper. The autouse
fixtures below make sure of that: no test can start a process other than
the harmless ones that the runner tests use, open a udev netlink socket, or
read the host's /etc/lvmvol/config.toml.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from lvmvol import config, udev
from lvmvol.config import Config
from lvmvol.mounts import parse_mountinfo
from lvmvol.ops.context import Context

from .fakes import FakeRunner

# Programs the runner tests start for real. Anything else (lvs, lvcreate,
# mkfs, losetup, ...) fails the test before it can start.
HARMLESS_PROGRAMS = {sys.executable, "true", "false", "sleep"}
# Prefix of the command names that the runner tests use to check the error
# for a command that does not exist.
MISSING_PROGRAM_PREFIX = "lvmvol-unit-test-missing-"

# The mount table that inventory tests see: /proc/self/mountinfo lines in
# which smokevg/data (254:4) is mounted at a path with a space.
MOUNTINFO = (
    "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/mapper/sysvg-root rw\n"
    "31 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=4027820k\n"
    "87 22 254:4 / /var/lib/lvmvol/data\\040set rw,relatime shared:40 - ext4 "
    "/dev/mapper/smokevg-data rw\n"
)


@pytest.fixture(autouse=True)
def process_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if lvmvol tries to start any program but the harmless ones."""
    real_popen = subprocess.Popen

    def guarded_popen(args, *positional, **keywords):
        program = args[0] if isinstance(args, (list, tuple)) else args
        program = str(program)
        if program not in HARMLESS_PROGRAMS and not program.startswith(MISSING_PROGRAM_PREFIX):
            raise AssertionError(f"a unit test tried to start {args!r}")
        return real_popen(args, *positional, **keywords)

    monkeypatch.setattr(subprocess, "Popen", guarded_popen)


@pytest.fixture(autouse=True)
def no_udev_monitor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if lvmvol tries to open a udev netlink monitor."""

    def reject_monitor():
        raise AssertionError("a unit test tried to open a udev monitor")

    monkeypatch.setattr(udev, "_block_monitor", reject_monitor)


@pytest.fixture(autouse=True)
def default_config_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the default config path at a missing file, so the host's config is never read."""
    path = tmp_path / "etc" / "config.toml"
    monkeypatch.setattr(config, "DEFAULT_PATH", path)
    monkeypatch.delenv(config.ENVIRONMENT_VARIABLE, raising=False)
    return path


@pytest.fixture(autouse=True)
def command_lock_in_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Put the command lock in the test's directory, so no test takes the host's /run/lock one."""
    from lvmvol.cli import common
    from lvmvol.lock import CommandLock

    lock_dir = tmp_path / "lock"
    monkeypatch.setattr(common, "command_lock", lambda config: CommandLock(str(lock_dir), config.lock_timeout))
    return lock_dir


@pytest.fixture(autouse=True)
def effective_uid(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Let CLI tests run mutating commands as any user: lvmvol reads the uid from the returned list."""
    from lvmvol.cli import common

    uid = [0]
    monkeypatch.setattr(common, "effective_uid", lambda: uid[0])
    return uid


@pytest.fixture(autouse=True)
def restore_lvmvol_logger():
    """Undo what the CLI's logging setup does to the ``lvmvol`` logger.

    The CLI replaces the logger's handlers with one bound to the stderr of
    the CliRunner that invoked it and stops propagation, which would hide
    later records from ``caplog``.
    """
    logger = logging.getLogger("lvmvol")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def device_waits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the device nodes that lvmvol waits for instead of listening to udev."""
    waited: list[str] = []

    def wait_for_node(path: str, timeout: float, present: bool = True) -> float:
        waited.append(path)
        return 0.0

    monkeypatch.setattr(udev, "wait_for_node", wait_for_node)
    return waited


@pytest.fixture
def fake_runner() -> FakeRunner:
    return FakeRunner()


def unit_config(**settings) -> Config:
    """Return the default settings with ``settings`` applied, and a high over-commit ratio.

    The recorded smokevg pool holds 700 MiB of thin volumes in 200 MiB of
    data space, 3.5 times its size and past the default overcommit_ratio of
    2, so tests that are not about the over-commit guard would be refused.
    """
    return Config(**{"overcommit_ratio": 100.0, **settings})


@pytest.fixture
def ctx(fake_runner: FakeRunner, tmp_path: Path) -> Context:
    """An operation context with default settings (see ``unit_config``) and the fake runner.

    The loop file list lives in the test's temporary directory, so no test
    writes the host's /etc.
    """
    return Context(config=unit_config(loop_file_list=str(tmp_path / "etc" / "loop-files")), runner=fake_runner)


@pytest.fixture
def mount_table(monkeypatch: pytest.MonkeyPatch):
    """Replace the kernel's mount table with ``MOUNTINFO`` wherever lvmvol reads it."""
    entries = parse_mountinfo(MOUNTINFO)

    def read_mount_table(pid: str = "self"):
        return list(entries)

    for module in ("lvmvol.ops.inventory", "lvmvol.ops.mounting", "lvmvol.ops.pools"):
        monkeypatch.setattr(f"{module}.read_mount_table", read_mount_table)
    return entries
