"""Freezing an encrypted volume's mounted filesystem around its snapshot: lvmvol.ops.snapshots."""

from __future__ import annotations

import pytest

from lvmvol import fs
from lvmvol.errors import CommandError, CommandTimeout
from lvmvol.mounts import parse_mountinfo
from lvmvol.ops.context import Context
from lvmvol.ops.snapshots import create_snapshot

from .conftest import MOUNTINFO
from .fakes import FakeRunner, Reply, lv_row, lvs_output
from .luks_fakes import FakeKernel, encrypted_row

MOUNTPOINT = "/srv/vol1"
FREEZE = ["fsfreeze", "--freeze", MOUNTPOINT]
THAW = ["fsfreeze", "--unfreeze", MOUNTPOINT]


@pytest.fixture
def kernel(fake_runner: FakeRunner, device_waits: list[str], monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    """smokevg/vol1 encrypted, its mapping open and mounted at MOUNTPOINT."""
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), encrypted_row("vol1", "/etc/k.key"))))
    kernel = FakeKernel(fake_runner, monkeypatch, parse_mountinfo(MOUNTINFO))
    kernel.mount_mapping("luks-smokevg-vol1", MOUNTPOINT)
    return kernel


def test_freeze_around_lvcreate(ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    create_snapshot(ctx, "vol1", "backup")

    mutating = fake_runner.executed_mutating()
    assert [argv[0] for argv in mutating[:4]] == ["bash", "fsfreeze", "lvcreate", "fsfreeze"]
    assert mutating[1] == FREEZE
    assert mutating[3] == THAW
    guard = fake_runner.detached[0]
    assert guard.argv[:3] == ["bash", "-c", fs.THAW_GUARD_SCRIPT]
    # Mountpoint, then the guard's timeout: twice command_timeout (120 s) plus 30 s.
    assert guard.argv[4:] == [MOUNTPOINT, "270"]
    assert guard.finished is True
    assert guard.line == fs.THAW_GUARD_RELEASE


def test_thaw_after_lvcreate_failure(ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    fake_runner.reply("lvcreate", Reply(returncode=5, stderr="  Failed to suspend vol1."))

    with pytest.raises(CommandError):
        create_snapshot(ctx, "vol1", "backup")

    assert fake_runner.executed_mutating()[-1] == THAW
    assert fake_runner.detached[0].line == fs.THAW_GUARD_RELEASE


def test_failed_freeze_releases_guard(ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    # fsfreeze fails with EBUSY when someone else froze the filesystem: the guard must not thaw theirs.
    fake_runner.reply("fsfreeze", Reply(returncode=1, stderr="fsfreeze: /srv/vol1: freeze failed: Device or resource busy"))

    with pytest.raises(CommandError) as raised:
        create_snapshot(ctx, "vol1", "backup")

    assert "thaw it with 'fsfreeze --unfreeze /srv/vol1'" in str(raised.value)
    assert "lvcreate" not in fake_runner.commands()
    assert fake_runner.detached[0].line == fs.THAW_GUARD_RELEASE


def test_freeze_timeout_lets_guard_thaw(ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel, monkeypatch) -> None:
    real_run = fake_runner.run

    def run(argv, **options):
        if argv[:2] == ["fsfreeze", "--freeze"]:
            raise CommandTimeout(argv, 120.0)
        return real_run(argv, **options)

    monkeypatch.setattr(fake_runner, "run", run)

    with pytest.raises(CommandTimeout):
        create_snapshot(ctx, "vol1", "backup")

    guard = fake_runner.detached[0]
    assert guard.finished is True
    assert guard.line is None


def test_failed_thaw_lets_guard_thaw(ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    fake_runner.reply("fsfreeze", Reply(), Reply(returncode=1, stderr="fsfreeze: unfreeze failed: Invalid argument"))

    with pytest.raises(CommandError) as raised:
        create_snapshot(ctx, "vol1", "backup")

    assert "if writes to /srv/vol1 hang, run 'fsfreeze --unfreeze /srv/vol1'" in str(raised.value)
    assert fake_runner.detached[0].line is None


def test_unmounted_encrypted_not_frozen(ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    kernel.mounts = [entry for entry in kernel.mounts if entry.mountpoint != MOUNTPOINT]

    create_snapshot(ctx, "vol1", "backup")

    assert "fsfreeze" not in fake_runner.commands()
    assert fake_runner.detached == []


def test_freeze_dry_run(ctx: Context, fake_runner: FakeRunner, kernel: FakeKernel) -> None:
    fake_runner.dry_run = True

    create_snapshot(ctx, "vol1", "backup")

    assert fake_runner.executed_mutating() == []
    assert [call.command for call in fake_runner.calls if call.dry_run] == ["bash", "fsfreeze", "lvcreate", "fsfreeze"]
