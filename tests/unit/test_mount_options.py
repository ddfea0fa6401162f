"""Mount option parsing and merging, mount access decisions, and the /proc scan for busy filesystems."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lvmvol import fs
from lvmvol.config import load_config
from lvmvol.errors import ConfigError, Conflict, InvalidInput
from lvmvol.mounts import merge_options, split_options
from lvmvol.ops.context import Context
from lvmvol.ops.mounting import mount_volume
from lvmvol.processes import parse_maps_devices, users_of_filesystem

from .fakes import FakeRunner


def test_split_options() -> None:
    assert split_options("nodev,nosuid", "x") == ["nodev", "nosuid"]
    assert split_options("", "x") == []


@pytest.mark.parametrize("text", ["nodev,,nosuid", "nodev, nosuid", "bind", "remount,ro", "loop=/dev/loop0"])
def test_split_options_rejects(text: str) -> None:
    with pytest.raises(InvalidInput):
        split_options(text, "--options")


def test_merge_options_later_wins() -> None:
    merged = merge_options(["nodev", "nosuid", "uid=1"], ["dev", "uid=2"], ["ro"], ["rw"])
    assert merged == ["nosuid", "dev", "uid=2", "rw"]


def test_xfs_read_only_gets_norecovery() -> None:
    assert fs.mount_options("xfs", read_only=True) == ["nouuid", "norecovery"]
    assert fs.mount_options("xfs", read_only=False) == ["nouuid"]
    assert fs.mount_options("ext4", read_only=True) == []


def test_config_mount_options_checked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('mount_options = "nodev,bind"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    assert "bind" in str(raised.value)
    path.write_text('mount_options = "noexec"\n')
    assert load_config(str(path)).mount_options == "noexec"


@pytest.fixture
def scratch_ctx(
    ctx: Context, tmp_path: Path, fake_runner: FakeRunner, mount_table, device_waits, monkeypatch: pytest.MonkeyPatch
) -> Context:
    """The smokevg report, mount_root in tmp_path, and a fake mount that the check after it accepts."""
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    monkeypatch.setattr("lvmvol.ops.mounting._verify_mounted", lambda target: None)
    ctx.config.mount_root = str(tmp_path / "mnt")
    return ctx


def mount_argv(runner: FakeRunner) -> list[str]:
    return next(argv for argv in runner.executed_mutating() if argv[0] == "mount")


def test_snapshot_mounts_read_only(scratch_ctx: Context, fake_runner: FakeRunner) -> None:
    outcome = mount_volume(scratch_ctx, "snap1")
    assert outcome.details["read_only"] is True
    assert mount_argv(fake_runner)[3:5] == ["-o", "nodev,nosuid,ro"]
    target = Path(outcome.details["mountpoint"])
    assert oct(target.stat().st_mode & 0o777) == oct(0o700)


def test_snapshot_read_write_and_options(scratch_ctx: Context, fake_runner: FakeRunner) -> None:
    mount_volume(scratch_ctx, "snap1", read_only=False, options="dev,noatime")
    assert mount_argv(fake_runner)[4] == "nosuid,dev,noatime,rw"


def test_read_write_conflicts_with_ro_option(scratch_ctx: Context, fake_runner: FakeRunner) -> None:
    with pytest.raises(InvalidInput):
        mount_volume(scratch_ctx, "vol1", read_only=False, options="ro")
    assert fake_runner.executed_mutating() == []


def test_mount_rejects_symlink_and_non_empty(scratch_ctx: Context, fake_runner: FakeRunner, tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "file").write_text("")
    link = tmp_path / "link"
    link.symlink_to(full)
    with pytest.raises(Conflict) as raised:
        mount_volume(scratch_ctx, "vol1", str(full))
    assert "not empty" in str(raised.value)
    with pytest.raises(InvalidInput) as raised:
        mount_volume(scratch_ctx, "vol1", str(link))
    assert "symbolic link" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_mount_rejects_kernel_filesystem_behind_symlink(
    scratch_ctx: Context, fake_runner: FakeRunner, tmp_path: Path
) -> None:
    # TMP/link/web resolves to /proc/web: the check must see the resolved path.
    (tmp_path / "link").symlink_to("/proc")
    with pytest.raises(InvalidInput, match="under /proc"):
        mount_volume(scratch_ctx, "vol1", str(tmp_path / "link" / "web"))
    assert fake_runner.executed_mutating() == []


def test_parse_maps_devices() -> None:
    text = (
        "55d0c0a00000-55d0c0a02000 r--p 00000000 fd:03 1835013    /srv/db/bin/tool\n"
        "7ffd5e1f0000-7ffd5e211000 rw-p 00000000 00:00 0          [stack]\n"
        "7f0000000000-7f0000001000 r--p 00000000 103:02 12 /lib/x y.so\n"
    )
    assert parse_maps_devices(text) == [(0xFD, 3, "/srv/db/bin/tool"), (0x103, 2, "/lib/x y.so")]


def test_users_of_filesystem_reads_proc_links(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "held").write_text("")
    process = tmp_path / "proc" / "42"
    (process / "fd").mkdir(parents=True)
    (process / "comm").write_text("postgres\n")
    (process / "cwd").symlink_to(data)
    (process / "root").symlink_to("/")
    (process / "fd" / "3").symlink_to(data / "held")
    (process / "maps").write_text("")
    device = os.stat(data).st_dev

    users = users_of_filesystem(os.major(device), os.minor(device), proc=str(tmp_path / "proc"))

    assert [user.pid for user in users] == [42]
    described = users[0].describe()
    assert described.startswith("process 42 (postgres): ")
    assert f"working directory {data}" in described
    assert f"open file {data / 'held'}" in described
