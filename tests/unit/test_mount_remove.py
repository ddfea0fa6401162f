"""Mounting, unmounting and removing volumes with a fake runner: lvmvol.ops.mounting and lvmvol.ops.removal."""

from __future__ import annotations

from pathlib import Path

import pytest

from lvmvol.errors import CommandError, Conflict, InvalidInput
from lvmvol.ops import removal
from lvmvol.ops.context import Context
from lvmvol.ops.mounting import mount_volume, umount_volume
from lvmvol.ops.removal import remove_volumes

from .fakes import FakeRunner, Reply, lv_row, lvs_output

DATA_MOUNT = "/var/lib/lvmvol/data set"


@pytest.fixture
def smoke_runner(fake_runner: FakeRunner, mount_table, device_waits, monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    """The fake runner with the smokevg report, and no holders outside the fixture mount table."""
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    monkeypatch.setattr(removal, "mounts_in_other_namespaces", lambda major, minor: [])
    monkeypatch.setattr(removal.devices, "holders", lambda device: [])
    return fake_runner


@pytest.fixture
def scratch_ctx(ctx: Context, tmp_path: Path) -> Context:
    """The context with mount_root in tmp_path, so no test touches /var/lib/lvmvol."""
    ctx.config.mount_root = str(tmp_path / "mnt")
    return ctx


def test_mount_already_there(scratch_ctx: Context, smoke_runner: FakeRunner) -> None:
    outcome = mount_volume(scratch_ctx, "data", DATA_MOUNT)
    assert outcome.changed is False
    assert smoke_runner.commands() == ["lvs"]


def test_mount_elsewhere_conflict(scratch_ctx: Context, smoke_runner: FakeRunner, tmp_path: Path) -> None:
    with pytest.raises(Conflict) as raised:
        mount_volume(scratch_ctx, "data", str(tmp_path / "other"))
    assert f"already mounted at {DATA_MOUNT}" in str(raised.value)
    assert smoke_runner.executed_mutating() == []


def test_mount_occupied_mountpoint(scratch_ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(Conflict) as raised:
        mount_volume(scratch_ctx, "vol1", "/")
    assert "/ is already a mountpoint of /dev/mapper/sysvg-root" in str(raised.value)
    assert smoke_runner.executed_mutating() == []


@pytest.mark.parametrize("target", ["relative/dir", "/proc", "/sys/fs/x", "/dev/../dev/shm"])
def test_mount_bad_mountpoint_path(scratch_ctx: Context, smoke_runner: FakeRunner, target: str) -> None:
    with pytest.raises(InvalidInput):
        mount_volume(scratch_ctx, "vol1", target)
    assert smoke_runner.executed_mutating() == []


def test_mount_target_is_file(scratch_ctx: Context, smoke_runner: FakeRunner, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(InvalidInput) as raised:
        mount_volume(scratch_ctx, "vol1", str(target))
    assert "exists and is not a directory" in str(raised.value)
    assert smoke_runner.executed_mutating() == []


def test_mount_no_filesystem(scratch_ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    raw = lv_row("vol1")
    raw["lv_tags"] = "lvmvol.fs=none,lvmvol.volume"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), raw)))
    with pytest.raises(InvalidInput) as raised:
        mount_volume(scratch_ctx, "vol1")
    assert "has no filesystem" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_mount_incomplete(scratch_ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    fake_runner.reply_report("lvs", "lvs_two_vgs.json")
    with pytest.raises(Conflict) as raised:
        mount_volume(scratch_ctx, "slowvg/db")
    assert "was not finished" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_mount_dry_run(scratch_ctx: Context, smoke_runner: FakeRunner, tmp_path: Path) -> None:
    smoke_runner.dry_run = True
    outcome = mount_volume(scratch_ctx, "vol1")
    target = str(tmp_path / "mnt" / "vol1")
    assert outcome.details == {"mountpoint": target, "read_only": False, "options": ["nodev", "nosuid", "rw"]}
    skipped = [call.argv for call in smoke_runner.calls if call.dry_run]
    assert skipped == [
        ["lvchange", "--activate", "y", "--ignoreactivationskip", "smokevg/vol1"],
        ["mount", "-t", "ext4", "-o", "nodev,nosuid,rw", "/dev/mapper/smokevg-vol1", target],
    ]
    assert not Path(target).exists()


def test_umount(scratch_ctx: Context, smoke_runner: FakeRunner) -> None:
    outcome = umount_volume(scratch_ctx, "data")
    assert outcome.changed is True
    assert smoke_runner.executed_mutating() == [["umount", DATA_MOUNT]]


def test_umount_not_mounted(scratch_ctx: Context, smoke_runner: FakeRunner) -> None:
    outcome = umount_volume(scratch_ctx, "vol1")
    assert outcome.changed is False
    assert smoke_runner.executed_mutating() == []


def test_remove(scratch_ctx: Context, smoke_runner: FakeRunner) -> None:
    outcomes = remove_volumes(scratch_ctx, ["vol1"])
    assert smoke_runner.executed_mutating() == [["lvremove", "--yes", "smokevg/vol1"]]
    assert outcomes[0].changed is True


def test_remove_missing(scratch_ctx: Context, smoke_runner: FakeRunner) -> None:
    outcomes = remove_volumes(scratch_ctx, ["nosuch"])
    assert outcomes[0].changed is False
    assert outcomes[0].notes == ["volume 'nosuch' does not exist"]
    assert smoke_runner.executed_mutating() == []


def test_remove_mounted_refused(scratch_ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(Conflict) as raised:
        remove_volumes(scratch_ctx, ["data"])
    message = str(raised.value)
    assert f"volume smokevg/data is in use: mounted at {DATA_MOUNT}" in message
    assert "--force" in message
    assert smoke_runner.executed_mutating() == []


def test_remove_checks_all_first(scratch_ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(Conflict):
        remove_volumes(scratch_ctx, ["vol1", "data"])
    assert smoke_runner.executed_mutating() == []


def test_remove_force_declined(scratch_ctx: Context, smoke_runner: FakeRunner) -> None:
    questions: list[str] = []

    def decline(question: str) -> bool:
        questions.append(question)
        return False

    with pytest.raises(Conflict) as raised:
        remove_volumes(scratch_ctx, ["data"], force=True, confirm=decline)
    assert "confirmation declined" in str(raised.value)
    assert len(questions) == 1
    assert smoke_runner.executed_mutating() == []


def test_remove_force_confirmed(scratch_ctx: Context, smoke_runner: FakeRunner) -> None:
    remove_volumes(scratch_ctx, ["data"], force=True, confirm=lambda question: True)
    assert smoke_runner.executed_mutating() == [
        ["umount", DATA_MOUNT],
        ["lvremove", "--yes", "smokevg/data"],
    ]


def test_remove_open_volume(scratch_ctx: Context, fake_runner: FakeRunner, mount_table, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(removal, "mounts_in_other_namespaces", lambda major, minor: [])
    monkeypatch.setattr(removal.devices, "holders", lambda device: [])
    open_snapshot = lv_row("snap1")
    open_snapshot["lv_device_open"] = "open"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), open_snapshot)))
    with pytest.raises(Conflict) as raised:
        remove_volumes(scratch_ctx, ["snap1"])
    assert "open by a process" in str(raised.value)
    # The open count was read again after udev settled, in case it was udev's own probe.
    assert fake_runner.commands() == ["lvs", "udevadm", "lvs"]


def test_remove_after_udev_probe(scratch_ctx: Context, fake_runner: FakeRunner, mount_table, monkeypatch: pytest.MonkeyPatch) -> None:
    # blkid, run by udev after a writer closed the LV, keeps it open at the first read only.
    monkeypatch.setattr(removal, "mounts_in_other_namespaces", lambda major, minor: [])
    monkeypatch.setattr(removal.devices, "holders", lambda device: [])
    probed = lv_row("snap1")
    probed["lv_device_open"] = "open"
    fake_runner.reply(
        "lvs",
        Reply(stdout=lvs_output(lv_row("pool"), probed)),
        Reply(stdout=lvs_output(lv_row("pool"), lv_row("snap1"))),
    )

    remove_volumes(scratch_ctx, ["snap1"])

    assert fake_runner.calls_of("udevadm")[0].argv == ["udevadm", "settle", "--timeout=30"]
    assert fake_runner.executed_mutating() == [["lvremove", "--yes", "smokevg/snap1"]]


def test_remove_unused_skips_settle(scratch_ctx: Context, smoke_runner: FakeRunner) -> None:
    remove_volumes(scratch_ctx, ["snap1"])

    assert "udevadm" not in smoke_runner.commands()


def test_remove_held_by_device(scratch_ctx: Context, smoke_runner: FakeRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(removal.devices, "holders", lambda device: ["dm-9"])
    with pytest.raises(Conflict) as raised:
        remove_volumes(scratch_ctx, ["snap1"])
    assert "held by device dm-9" in str(raised.value)


def test_remove_failure_hint(scratch_ctx: Context, smoke_runner: FakeRunner) -> None:
    smoke_runner.reply("lvremove", Reply(returncode=5, stderr='  Logical volume smokevg/vol1 in use.\n'))
    with pytest.raises(CommandError) as raised:
        remove_volumes(scratch_ctx, ["vol1"])
    assert "fuser -vm /dev/mapper/smokevg-vol1" in str(raised.value)
