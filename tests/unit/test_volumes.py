"""Creating thin volumes with a fake runner: lvmvol.ops.volumes.create_volume."""

from __future__ import annotations

import pytest

from lvmvol.errors import CommandError, Conflict, InvalidInput, NotFound
from lvmvol.ops.context import Context
from lvmvol.ops.volumes import create_volume

from .fakes import FakeRunner, Reply, lv_row, lvs_output

MiB = 1024 * 1024


@pytest.fixture
def smoke_runner(fake_runner: FakeRunner, mount_table, device_waits) -> FakeRunner:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    return fake_runner


@pytest.fixture
def two_vgs_runner(fake_runner: FakeRunner, mount_table, device_waits) -> FakeRunner:
    fake_runner.reply_report("lvs", "lvs_two_vgs.json")
    return fake_runner


def test_create_commands(ctx: Context, smoke_runner: FakeRunner, device_waits: list[str]) -> None:
    outcome = create_volume(ctx, "web", 100 * MiB)
    assert smoke_runner.commands() == ["lvs", "lvcreate", "mkfs.ext4", "lvchange"]
    assert device_waits == ["/dev/mapper/smokevg-web"]
    assert outcome.changed is True
    assert outcome.name == "web"


def test_create_lvcreate_argv(ctx: Context, smoke_runner: FakeRunner) -> None:
    create_volume(ctx, "web", 100 * MiB)
    assert smoke_runner.calls_of("lvcreate")[0].argv == [
        "lvcreate", "--type", "thin", "--virtualsize", "104857600b", "--thinpool", "pool",
        "--name", "web", "--wipesignatures", "y", "--yes",
        "--addtag", "lvmvol.volume", "--addtag", "lvmvol.incomplete", "--addtag", "lvmvol.fs=ext4",
        "smokevg",
    ]


def test_create_mkfs_then_clears_incomplete(ctx: Context, smoke_runner: FakeRunner) -> None:
    create_volume(ctx, "web", 100 * MiB)
    assert smoke_runner.calls_of("mkfs.ext4")[0].argv[-1] == "/dev/mapper/smokevg-web"
    assert smoke_runner.calls_of("lvchange")[0].argv == ["lvchange", "--deltag", "lvmvol.incomplete", "smokevg/web"]


def test_create_xfs(ctx: Context, smoke_runner: FakeRunner) -> None:
    create_volume(ctx, "big", 512 * MiB, filesystem="xfs")
    assert smoke_runner.calls_of("mkfs.xfs")[0].argv == ["mkfs.xfs", "-q", "-f", "-K", "/dev/mapper/smokevg-big"]


def test_create_without_filesystem(ctx: Context, smoke_runner: FakeRunner) -> None:
    create_volume(ctx, "raw", 8 * MiB, filesystem="none")
    assert smoke_runner.commands() == ["lvs", "lvcreate", "lvchange"]


def test_create_config_filesystem(ctx: Context, smoke_runner: FakeRunner) -> None:
    ctx.config.filesystem = "none"
    outcome = create_volume(ctx, "raw", 8 * MiB)
    assert outcome.details["filesystem"] == "none"


def test_create_details(ctx: Context, smoke_runner: FakeRunner) -> None:
    outcome = create_volume(ctx, "web", 100 * MiB)
    assert outcome.to_dict() == {
        "name": "web",
        "changed": True,
        "vg": "smokevg",
        "pool": "pool",
        "size_bytes": 100 * MiB,
        "requested_size_bytes": 100 * MiB,
        "filesystem": "ext4",
        "encrypted": False,
        "device": "/dev/mapper/smokevg-web",
    }
    assert outcome.notes == []


def test_create_rounds_to_extent(ctx: Context, smoke_runner: FakeRunner) -> None:
    outcome = create_volume(ctx, "web", 10 * MiB)
    assert outcome.details["size_bytes"] == 12 * MiB
    assert outcome.details["requested_size_bytes"] == 10 * MiB
    assert "--virtualsize" in smoke_runner.calls_of("lvcreate")[0].argv
    assert "12582912b" in smoke_runner.calls_of("lvcreate")[0].argv
    assert len(outcome.notes) == 1
    assert "rounded up from 10.0 MiB (10485760 bytes) to 12.0 MiB (12582912 bytes)" in outcome.notes[0]


def test_create_generated_name(ctx: Context, smoke_runner: FakeRunner) -> None:
    outcome = create_volume(ctx, None, 100 * MiB)
    assert outcome.name.startswith("vol-")
    assert "--name" in smoke_runner.calls_of("lvcreate")[0].argv


def test_create_same_spec_unchanged(ctx: Context, smoke_runner: FakeRunner) -> None:
    outcome = create_volume(ctx, "vol1", 300 * MiB)
    assert outcome.changed is False
    assert smoke_runner.commands() == ["lvs"]


def test_create_compares_rounded_size(ctx: Context, smoke_runner: FakeRunner) -> None:
    # 297 MiB rounds up to 300 MiB, the size of vol1, in 4 MiB extents.
    assert create_volume(ctx, "vol1", 297 * MiB).changed is False


def test_create_decimal_size_conflict(ctx: Context, smoke_runner: FakeRunner) -> None:
    # 300 MB rounds up to 288 MiB, not the 300 MiB that vol1 has.
    with pytest.raises(Conflict):
        create_volume(ctx, "vol1", 300_000_000)


def test_create_other_size_conflict(ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(Conflict) as raised:
        create_volume(ctx, "vol1", 1024 * MiB)
    message = str(raised.value)
    assert "volume smokevg/vol1 exists with another specification" in message
    assert "size 300.0 MiB, not 1.0 GiB" in message
    assert raised.value.exit_code == 4
    assert smoke_runner.executed_mutating() == []


def test_create_other_filesystem_conflict(ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(Conflict) as raised:
        create_volume(ctx, "vol1", 300 * MiB, filesystem="xfs")
    assert "filesystem ext4, not xfs" in str(raised.value)
    assert smoke_runner.executed_mutating() == []


def test_create_over_snapshot_conflict(ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(Conflict) as raised:
        create_volume(ctx, "snap1", 300 * MiB)
    assert "it is a snapshot of vol1" in str(raised.value)
    assert smoke_runner.executed_mutating() == []


def test_create_over_unmanaged_lv(ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(Conflict) as raised:
        create_volume(ctx, "scratch", 64 * MiB)
    assert "an LV named smokevg/scratch exists and is not managed by lvmvol" in str(raised.value)
    assert smoke_runner.executed_mutating() == []


def test_create_over_pool_name(ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(Conflict):
        create_volume(ctx, "otherpool", 64 * MiB)
    assert smoke_runner.executed_mutating() == []


def test_create_name_in_other_pool(ctx: Context, two_vgs_runner: FakeRunner) -> None:
    with pytest.raises(Conflict) as raised:
        create_volume(ctx, "db", 40 * MiB, pool_spec="slowvg/archive")
    # slowvg/db is in another pool of the same VG, so its specification differs.
    message = str(raised.value)
    assert "volume slowvg/db exists with another specification" in message
    assert "pool pool, not archive" in message
    assert two_vgs_runner.executed_mutating() == []


def test_create_name_unique_on_host(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    other_pool = lv_row("pool")
    other_pool["vg_name"] = "othervg"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), lv_row("data"), other_pool)))
    with pytest.raises(Conflict) as raised:
        create_volume(ctx, "data", 100 * MiB, pool_spec="othervg/pool")
    assert "volume name 'data' is already used in volume group 'smokevg'" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_create_finishes_incomplete(ctx: Context, two_vgs_runner: FakeRunner, device_waits: list[str]) -> None:
    outcome = create_volume(ctx, "db", 40 * MiB, pool_spec="slowvg/pool")
    assert outcome.changed is True
    argvs = [call.argv for call in two_vgs_runner.calls]
    assert argvs[1] == ["lvchange", "--activate", "y", "--ignoreactivationskip", "slowvg/db"]
    assert argvs[2][0] == "mkfs.ext4"
    assert argvs[3] == ["lvchange", "--deltag", "lvmvol.incomplete", "slowvg/db"]
    assert "lvcreate" not in two_vgs_runner.commands()
    assert device_waits == ["/dev/mapper/slowvg-db"]


def test_create_mkfs_failure_removes(ctx: Context, smoke_runner: FakeRunner) -> None:
    smoke_runner.reply("mkfs.ext4", Reply(returncode=1, stderr="mkfs.ext4: Device size reported to be zero.\n"))
    with pytest.raises(CommandError) as raised:
        create_volume(ctx, "web", 100 * MiB)
    assert "mkfs.ext4 failed with exit code 1: mkfs.ext4: Device size reported to be zero." in str(raised.value)
    assert smoke_runner.commands() == ["lvs", "lvcreate", "mkfs.ext4", "lvremove"]
    assert smoke_runner.calls[-1].argv == ["lvremove", "--yes", "smokevg/web"]


def test_create_lvcreate_failure(ctx: Context, smoke_runner: FakeRunner) -> None:
    smoke_runner.reply("lvcreate", Reply(returncode=5, stderr="  Insufficient free space.\n"))
    with pytest.raises(CommandError) as raised:
        create_volume(ctx, "web", 100 * MiB)
    assert raised.value.exit_code == 5
    assert smoke_runner.commands() == ["lvs", "lvcreate"]


def test_create_incomplete_failure_keeps_volume(ctx: Context, two_vgs_runner: FakeRunner) -> None:
    two_vgs_runner.reply("mkfs.ext4", Reply(returncode=1))
    with pytest.raises(CommandError):
        create_volume(ctx, "db", 40 * MiB, pool_spec="slowvg/pool")
    assert "lvremove" not in two_vgs_runner.commands()


@pytest.mark.parametrize("filesystem", ["btrfs", "EXT4"])
def test_create_invalid_filesystem(ctx: Context, smoke_runner: FakeRunner, filesystem: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        create_volume(ctx, "web", 100 * MiB, filesystem=filesystem)
    assert f"invalid filesystem {filesystem!r}" in str(raised.value)
    assert smoke_runner.calls == []


def test_create_xfs_too_small(ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(InvalidInput) as raised:
        create_volume(ctx, "web", 100 * MiB, filesystem="xfs")
    assert "an XFS filesystem needs at least 300.0 MiB" in str(raised.value)
    assert smoke_runner.calls == []


def test_create_invalid_name_runs_nothing(ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(InvalidInput):
        create_volume(ctx, "data_tmeta", 100 * MiB)
    assert smoke_runner.calls == []


def test_create_name_too_long_for_vg(ctx: Context, smoke_runner: FakeRunner) -> None:
    # 120 characters fit lvm2's limit but not "luks-smokevg-" + name.
    with pytest.raises(InvalidInput) as raised:
        create_volume(ctx, "d" * 120, 100 * MiB)
    assert "in volume group 'smokevg'" in str(raised.value)
    assert smoke_runner.executed_mutating() == []


def test_create_pool_not_found(ctx: Context, smoke_runner: FakeRunner) -> None:
    with pytest.raises(NotFound):
        create_volume(ctx, "web", 100 * MiB, pool_spec="nosuch")
    assert smoke_runner.executed_mutating() == []


def test_create_dry_run(ctx: Context, smoke_runner: FakeRunner, device_waits: list[str]) -> None:
    smoke_runner.dry_run = True
    outcome = create_volume(ctx, "web", 100 * MiB)
    assert outcome.changed is True
    assert smoke_runner.executed_mutating() == []
    assert [call.command for call in smoke_runner.calls if call.dry_run] == ["lvcreate", "mkfs.ext4", "lvchange"]
    assert device_waits == []
