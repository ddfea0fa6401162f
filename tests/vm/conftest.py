"""Fixtures for the VM suite, which runs lvmvol against a real kernel and lvm2.

Run it with ``make vm-test``: tests/vm/run-vm boots a throwaway VM and
tests/vm/guest-init prepares it. Outside that VM the whole suite stops with an
error before any test runs, and inside it a skipped test counts as a failure,
so a green run always means that every selected test ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import pytest

from .forked_cli import run_forked
from .helpers import (
    ConfigFile,
    LoopDevice,
    attach_loop_device,
    format_result,
    make_unique_name,
    release_loop_device,
    run_command,
)

SUITE_DIR = Path(__file__).resolve().parent


def in_vm_suite(item: pytest.Item) -> bool:
    return SUITE_DIR in Path(item.path).resolve().parents


class LoopCleanupWarning(UserWarning):
    """Warning that a step of the loop device teardown failed, so later tests may find leftovers."""


def find_environment_problems() -> list[str]:
    """Return the reasons why this process is not inside the VM that run-vm boots."""
    problems = []
    try:
        cmdline = Path("/proc/cmdline").read_text()
    except OSError:
        cmdline = ""
    if "virtme" not in cmdline:
        problems.append("the kernel command line has no virtme option, so this is not the virtme-ng VM")
    if os.geteuid() != 0:
        problems.append(f"the tests run as uid {os.geteuid()}, not as root")
    if not Path("/dev/mapper/control").exists():
        problems.append("/dev/mapper/control is missing, so device-mapper is not available")
    scratch = os.environ.get("LVMVOL_VM_SCRATCH", "")
    if not scratch or not Path(scratch).is_dir():
        problems.append("LVMVOL_VM_SCRATCH does not name a directory (tests/vm/guest-init sets it)")
    return problems


def keep_shard(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep only this VM's share of the tests when LVMVOL_VM_SHARD=I/N is set (tests/vm/run-shards).

    Test I, I+N, I+2N... of the collection order stay, so every test runs in
    exactly one of the N VMs and neighbouring tests of one file spread out.
    """
    shard = os.environ.get("LVMVOL_VM_SHARD")
    if not shard:
        return
    index_text, _, count_text = shard.partition("/")
    index, count = int(index_text), int(count_text)
    if not 0 <= index < count:
        raise pytest.UsageError(f"LVMVOL_VM_SHARD={shard!r}: expected I/N with 0 <= I < N")
    kept = [item for position, item in enumerate(items) if position % count == index]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # trylast: runs after -k and -m have deselected items, so a host run that
    # selects no VM test is not stopped.
    if not any(in_vm_suite(item) for item in items):
        return
    keep_shard(config, items)
    problems = find_environment_problems()
    if problems:
        raise pytest.UsageError(
            "the VM suite in tests/vm must run inside the throwaway VM; "
            "start it with 'make vm-test' (tests/vm/run-vm). Problems found:\n  - "
            + "\n  - ".join(problems)
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Turn a skipped VM test into a failure, so the suite never passes by skipping.

    An expected failure (xfail) stays what it is.
    """
    outcome = yield
    report = outcome.get_result()
    if not in_vm_suite(item):
        return
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"the VM suite does not allow skipped tests, but this one was skipped: {reason}"
        )


@pytest.fixture(scope="session")
def vm_scratch() -> Path:
    """The scratch directory on the host's disk shared by run-vm; loop files go here."""
    return Path(os.environ["LVMVOL_VM_SCRATCH"])


@pytest.fixture
def loop_device(vm_scratch: Path) -> Any:
    """Return a factory ``loop_device(size="512M") -> "/dev/loopN"``.

    Each call attaches a new sparse file from the scratch directory. At
    teardown, everything built on each device is removed: mounts, dm-crypt
    mappings, VGs, the PV label, the loop device and the file. A teardown step
    that fails emits a LoopCleanupWarning and does not fail the test.
    """
    attached: list[LoopDevice] = []

    def attach(size: str | int = "512M") -> str:
        loop = attach_loop_device(vm_scratch, size)
        attached.append(loop)
        return loop.path

    yield attach

    for loop in reversed(attached):
        try:
            problems = release_loop_device(loop)
        except Exception as error:  # teardown must go on to the other devices
            problems = [f"{type(error).__name__}: {error}"]
        for problem in problems:
            message = f"cleanup of {loop.path} ({loop.backing_file.name}) failed: {problem}"
            print(message, file=sys.stderr)
            warnings.warn(message, LoopCleanupWarning)


@pytest.fixture(scope="session")
def used_names() -> set[str]:
    return set()


@pytest.fixture
def unique_name(used_names: set[str]) -> Callable[[str], str]:
    """Return a factory ``unique_name(prefix="t")`` of names like ``t3f9a1``.

    Names are valid VG and LV names and unique within the session.
    """

    def make(prefix: str = "t") -> str:
        return make_unique_name(prefix, used_names)

    return make


@pytest.fixture
def lvmvol_config(tmp_path: Path) -> ConfigFile:
    """The per-test config file that the ``lvmvol`` fixture passes with --config.

    Empty by default. ``lvmvol_config["key"] = value`` or
    ``lvmvol_config.update({...})`` writes TOML, and ``write_text`` writes raw text.
    """
    return ConfigFile(tmp_path / "lvmvol.toml")


@pytest.fixture
def lvmvol(lvmvol_config: ConfigFile) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Return a function that runs the lvmvol CLI in a child process.

    ``lvmvol(*args, input=None, check=True, env=None, timeout=300)`` runs
    ``lvmvol --config FILE *args`` with stdout and stderr captured as text,
    in a forked child of this process (see forked_cli.py), or as
    ``python -m lvmvol`` when LVMVOL_TEST_SUBPROCESS=1. stdin is closed unless ``input`` is given, so a prompt fails
    instead of waiting. ``env`` adds variables to the environment. With
    ``check``, a non-zero exit code raises AssertionError that shows argv,
    the exit code, stdout and stderr.
    """

    def run(
        *args: str,
        input: str | None = None,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        cli_args = ["--config", str(lvmvol_config.path), *args]
        if os.environ.get("LVMVOL_TEST_SUBPROCESS") == "1":
            argv = [sys.executable, "-m", "lvmvol", *cli_args]
            result = run_command(argv, input=input, check=False, env=env, timeout=timeout)
        else:
            argv = ["lvmvol", *cli_args]
            result = run_forked(cli_args, input=input, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                "lvmvol failed\n"
                + format_result(argv, result.returncode, result.stdout, result.stderr)
            )
        return result

    return run
