"""Thin snapshots with a fake runner: lvmvol.ops.snapshots.create_snapshot."""

from __future__ import annotations

from datetime import datetime

import pytest

from lvmvol import names
from lvmvol.errors import Conflict, InvalidInput, NotFound
from lvmvol.ops.context import Context
from lvmvol.ops.snapshots import create_snapshot

from .fakes import FakeRunner, Reply, lv_row, lvs_output


@pytest.fixture
def smoke_runner(fake_runner: FakeRunner, mount_table, device_waits) -> FakeRunner:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    return fake_runner


def test_snapshot_commands(ctx: Context, smoke_runner: FakeRunner, device_waits: list[str]) -> None:
    outcome = create_snapshot(ctx, "vol1", "backup")
    assert smoke_runner.calls[1].argv == [
        "lvcreate", "--snapshot", "--name", "backup", "--setactivationskip", "n", "--yes",
        "--addtag", "lvmvol.fs=ext4", "--addtag", "lvmvol.volume", "smokevg/vol1",
    ]
    # No device node exists in the test, so lvmvol activates the snapshot itself.
    assert smoke_runner.calls[2].argv == ["lvchange", "--activate", "y", "--ignoreactivationskip", "smokevg/backup"]
    assert device_waits == ["/dev/mapper/smokevg-backup"]
    assert outcome.changed is True
    assert outcome.details["origin"] == "vol1"
    assert outcome.details["device"] == "/dev/mapper/smokevg-backup"


def test_snapshot_of_snapshot(ctx: Context, smoke_runner: FakeRunner) -> None:
    create_snapshot(ctx, "snap1", "snap2")
    assert smoke_runner.calls[1].argv[-1] == "smokevg/snap1"


def test_snapshot_default_name(ctx: Context, smoke_runner: FakeRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    class FixedDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 12, 4, 18, 30, 0)

    monkeypatch.setattr(names, "datetime", FixedDatetime)
    outcome = create_snapshot(ctx, "vol1")
    assert outcome.name == "vol1-20261204-183000"


def test_snapshot_existing_unchanged(ctx: Context, smoke_runner: FakeRunner) -> None:
    outcome = create_snapshot(ctx, "vol1", "snap1")
    assert outcome.changed is False
    assert smoke_runner.commands() == ["lvs"]


def test_snapshot_name_of_other_volume(ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(Conflict) as raised:
        create_snapshot(ctx, "vol1", "data")
    assert "smokevg/data exists and is not a snapshot of vol1" in str(raised.value)
    assert smoke_runner.executed_mutating() == []


def test_snapshot_name_of_unmanaged_lv(ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(Conflict):
        create_snapshot(ctx, "vol1", "scratch")
    assert smoke_runner.executed_mutating() == []


def test_snapshot_source_missing(ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(NotFound):
        create_snapshot(ctx, "nosuch", "backup")
    assert smoke_runner.executed_mutating() == []


def test_snapshot_source_incomplete(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    fake_runner.reply_report("lvs", "lvs_two_vgs.json")
    with pytest.raises(Conflict) as raised:
        create_snapshot(ctx, "slowvg/db", "backup")
    assert "volume slowvg/db was not finished" in str(raised.value)
    assert fake_runner.executed_mutating() == []


@pytest.mark.parametrize("name", ["snapshot1", "a_rimage", "a b"])
def test_snapshot_invalid_name(ctx: Context, smoke_runner: FakeRunner, name: str) -> None:
    with pytest.raises(InvalidInput):
        create_snapshot(ctx, "vol1", name)
    assert smoke_runner.calls == []


def test_snapshot_default_name_too_long(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    source = lv_row("vol1")
    source["lv_name"] = "v" * 110
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), source)))
    with pytest.raises(InvalidInput):
        create_snapshot(ctx, "v" * 110)
    assert fake_runner.executed_mutating() == []


def test_snapshot_dry_run(ctx: Context, smoke_runner: FakeRunner, device_waits: list[str]) -> None:
    smoke_runner.dry_run = True
    outcome = create_snapshot(ctx, "vol1", "backup")
    assert outcome.changed is True
    assert smoke_runner.executed_mutating() == []
    assert [call.command for call in smoke_runner.calls if call.dry_run] == ["lvcreate"]
    assert device_waits == []


def test_snapshot_read_only_argv(ctx: Context, smoke_runner: FakeRunner) -> None:
    outcome = create_snapshot(ctx, "vol1", "backup", read_only=True)
    assert smoke_runner.calls[1].argv[:8] == [
        "lvcreate", "--snapshot", "--name", "backup", "--setactivationskip", "n", "--permission", "r",
    ]
    assert outcome.details["read_only"] is True


def test_snapshot_existing_read_only_unchanged(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    snapshot = lv_row("snap1")
    snapshot["lv_attr"] = "Vri-a-tz--"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), lv_row("vol1"), snapshot)))
    outcome = create_snapshot(ctx, "vol1", "snap1", read_only=True)
    assert outcome.changed is False
    assert fake_runner.executed_mutating() == []


def test_snapshot_permission_differs(ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(Conflict) as raised:
        create_snapshot(ctx, "vol1", "snap1", read_only=True)
    assert str(raised.value) == (
        "snapshot smokevg/snap1 exists and is writable; "
        "choose another snapshot name, or repeat the command without --read-only"
    )
    assert smoke_runner.executed_mutating() == []


def test_snapshot_plain_mounted_not_frozen(ctx: Context, smoke_runner: FakeRunner) -> None:
    # smokevg/data is mounted; lvm2's suspend freezes a filesystem on the LV itself.
    create_snapshot(ctx, "data", "data-snap")
    assert "fsfreeze" not in smoke_runner.commands()
    assert smoke_runner.detached == []


def test_snapshot_over_threshold_refused(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    pool = lv_row("pool")
    pool["data_percent"] = "88.24"
    pool["metadata_percent"] = "11.33"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(pool, lv_row("vol1"))))
    with pytest.raises(Conflict) as raised:
        create_snapshot(ctx, "vol1", "backup", allow_overcommit=True)
    message = str(raised.value)
    assert message.startswith(
        "cannot add a snapshot of vol1 (300.0 MiB) to thin pool smokevg/pool: it is past its threshold "
        "(data 88.2% >= 80%), with data 88.2% and metadata 11.3% in use; extend the pool"
    )
    assert "remove snapshots" in message
    assert fake_runner.executed_mutating() == []


def test_snapshot_overcommit_refused(ctx: Context, smoke_runner: FakeRunner) -> None:
    ctx.config.overcommit_ratio = 2.0
    with pytest.raises(Conflict) as raised:
        create_snapshot(ctx, "vol1", "backup")
    assert "would total 1000.0 MiB, 5.0 times its 200.0 MiB of data space" in str(raised.value)
    assert smoke_runner.executed_mutating() == []


def test_snapshot_overcommit_allowed_notes(ctx: Context, smoke_runner: FakeRunner) -> None:
    ctx.config.overcommit_ratio = 2.0
    outcome = create_snapshot(ctx, "vol1", "backup", allow_overcommit=True)
    assert outcome.changed is True
    assert outcome.notes == [
        "thin pool smokevg/pool is over-committed: its thin volumes and snapshots would total "
        "1000.0 MiB, 5.0 times its 200.0 MiB of data space (overcommit_ratio 2), "
        "with data 12.5% and metadata 10.6% in use"
    ]


def test_snapshot_existing_skips_capacity(ctx: Context, smoke_runner: FakeRunner) -> None:
    # Re-running a finished snapshot must not fail on a pool that filled up since.
    ctx.config.overcommit_ratio = 1.0
    outcome = create_snapshot(ctx, "vol1", "snap1")
    assert outcome.changed is False
