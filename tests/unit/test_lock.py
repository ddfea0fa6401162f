"""The command lock (lvmvol.lock) and where the CLI takes it, with the root check."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from lvmvol.cli import cli
from lvmvol.errors import LockTimeout
from lvmvol.lock import CommandLock, Holder, lock_path, parse_holder

from .fakes import FakeRunner


def test_lock_records_holder_and_clears_it(tmp_path: Path) -> None:
    lock = CommandLock(str(tmp_path / "lock"), 1, argv=["lvmvol", "volume", "create", "x"])

    with lock:
        recorded = json.loads(Path(lock_path(str(tmp_path / "lock"))).read_text())

    assert recorded == {"pid": os.getpid(), "argv": ["lvmvol", "volume", "create", "x"]}
    assert Path(lock.path).read_text() == ""


def test_second_lock_times_out_naming_holder(tmp_path: Path) -> None:
    lock_dir = str(tmp_path)
    with CommandLock(lock_dir, 1, argv=["lvmvol", "pool", "rm", "vg/pool"]):
        with pytest.raises(LockTimeout) as raised:
            CommandLock(lock_dir, 0.1).acquire()

    message = str(raised.value)
    assert f"pid {os.getpid()} (lvmvol pool rm vg/pool)" in message
    assert "lock_timeout" in message
    assert raised.value.exit_code == 7


def test_lock_free_again_after_release(tmp_path: Path) -> None:
    with CommandLock(str(tmp_path), 1):
        pass

    with CommandLock(str(tmp_path), 0.1) as second:
        assert second.path == lock_path(str(tmp_path))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"pid": 12, "argv": ["lvmvol", "check"]}', Holder(12, ["lvmvol", "check"])),
        ("", Holder(None, [])),
        ('{"pid": "x"}', Holder(None, [])),
        ("not json", Holder(None, [])),
    ],
)
def test_parse_holder(text: str, expected: Holder) -> None:
    assert parse_holder(text) == expected


def test_holder_without_pid_is_described() -> None:
    assert "has not recorded its pid" in Holder(None, []).describe()


@pytest.fixture
def run_cli(fake_runner: FakeRunner, mount_table, device_waits, monkeypatch: pytest.MonkeyPatch):
    """Run the CLI with the fake runner as the one lvmvol builds."""
    from lvmvol.cli import common

    def make_runner(timeout: float, dry_run: bool) -> FakeRunner:
        fake_runner.dry_run = dry_run
        return fake_runner

    monkeypatch.setattr(common, "Runner", make_runner)
    return lambda *args: CliRunner().invoke(cli, list(args))


def test_mutating_command_waits_for_lock(run_cli, command_lock_in_tmp: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("lock_timeout = 0.2\n")
    with CommandLock(str(command_lock_in_tmp), 1, argv=["holder-marker"]):
        result = run_cli("--config", str(config), "volume", "create", "db", "--size", "1G")

    assert result.exit_code == 7
    assert "holder-marker" in result.output


@pytest.mark.parametrize(
    "args",
    [("volume", "ls"), ("volume", "show", "data"), ("pool", "ls"), ("tree",), ("check",)],
)
def test_read_only_command_ignores_lock(run_cli, command_lock_in_tmp: Path, tmp_path: Path, args) -> None:
    config = tmp_path / "config.toml"
    config.write_text("lock_timeout = 0.2\n")
    with CommandLock(str(command_lock_in_tmp), 1):
        result = run_cli("--config", str(config), *args)

    assert result.exit_code != 7, result.output


def test_dry_run_takes_no_lock(run_cli, command_lock_in_tmp: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("lock_timeout = 0.2\n")
    with CommandLock(str(command_lock_in_tmp), 1):
        result = run_cli("--config", str(config), "--dry-run", "volume", "rm", "data")

    assert result.exit_code != 7, result.output


@pytest.mark.parametrize(
    "args",
    [
        ("volume", "create", "db", "--size", "1G"),
        ("volume", "rm", "data"),
        ("volume", "umount", "data"),
        ("pool", "rm", "smokevg/pool"),
        ("snapshot", "data"),
        ("check", "--repair"),
    ],
)
def test_mutating_command_refused_without_root(run_cli, effective_uid: list[int], fake_runner: FakeRunner, args) -> None:
    effective_uid[0] = 1000

    result = run_cli(*args)

    assert result.exit_code == 77
    assert "must run as root, not as uid 1000" in result.output
    assert fake_runner.calls == []


def test_listing_runs_without_root(run_cli, effective_uid: list[int], fake_runner: FakeRunner) -> None:
    effective_uid[0] = 1000
    fake_runner.reply_report("lvs", "lvs_smokevg.json")

    result = run_cli("volume", "ls", "--json")

    assert result.exit_code == 0, result.output
