"""Initialising thin pools with a fake runner: lvmvol.ops.pools."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import pytest

from lvmvol import tags
from lvmvol.errors import CommandError, Conflict, InvalidInput, NotFound
from lvmvol.ops.context import Context
from lvmvol.ops.pools import (
    METADATA_MAX,
    METADATA_MIN,
    MIN_FILE_SIZE,
    PoolSize,
    init_file_pool,
    init_pool,
    metadata_size_for,
)

from .fakes import FakeRunner, Reply, lv_row, lvs_output

MiB = 1024 * 1024
GiB = 1024 * MiB
EXTENT = 4 * MiB

# The data size of a pool on one new 1 GiB device. lvmvol reserves 1 MiB for
# lvm2's label and metadata area, which leaves 255 extents. The pool's
# metadata LV and the spare metadata LV take one extent each.
DATA_SIZE_1GIB = 255 * EXTENT - 2 * EXTENT


@pytest.fixture
def fake_device(tmp_path: Path) -> str:
    """A sparse 1 GiB regular file that replaces a new loop device.

    lvmvol reads a device's size by seeking to its end, which works on a
    regular file too, so no real block device is needed.
    """
    path = tmp_path / "fake-loop-device"
    with open(path, "wb") as handle:
        handle.truncate(GiB)
    return str(path)


def created_pool_output(vg: str = "lvmvol", name: str = "pool") -> str:
    row = lv_row("pool")
    row["vg_name"] = vg
    row["lv_name"] = name
    row["lv_size"] = str(DATA_SIZE_1GIB)
    return lvs_output(row)


def test_pool_size_parse_none() -> None:
    assert PoolSize.parse(None) == PoolSize()


def test_pool_size_parse_bytes() -> None:
    assert PoolSize.parse("50G") == PoolSize(size=50 * GiB)


def test_pool_size_parse_percent() -> None:
    assert PoolSize.parse("80%") == PoolSize(percent=80.0)


@pytest.mark.parametrize("text", ["0%", "101%", "50", "0M", "5X"])
def test_pool_size_parse_invalid(text: str) -> None:
    with pytest.raises(InvalidInput):
        PoolSize.parse(text)


@pytest.mark.parametrize(
    ("data_size", "expected"),
    [
        (100 * MiB, METADATA_MIN),
        (2 * GiB, METADATA_MIN),
        (10 * GiB, 20 * MiB),
        (10 * GiB + MiB, 24 * MiB),
        (100 * 1024 * GiB, METADATA_MAX),
    ],
)
def test_metadata_size_for(data_size: int, expected: int) -> None:
    assert metadata_size_for(data_size, EXTENT) == expected


def test_init_pool_new_device(ctx: Context, fake_runner: FakeRunner, fake_device: str, mount_table) -> None:
    fake_runner.reply("lvs", Reply(stdout=created_pool_output()))
    outcome = init_pool(ctx, [fake_device], "lvmvol", "pool", PoolSize(), known_empty={fake_device: None})
    assert fake_runner.executed_mutating() == [
        ["pvcreate", fake_device],
        ["vgcreate", "--addtag", "lvmvol.vg", "lvmvol", fake_device],
        [
            "lvcreate", "--type", "thin-pool", "--size", f"{DATA_SIZE_1GIB}b",
            "--poolmetadatasize", f"{EXTENT}b", "--name", "pool", "--yes",
            "--addtag", "lvmvol.pool", "lvmvol",
        ],
        ["lvchange", "--monitor", "y", "lvmvol/pool"],
    ]
    assert outcome.changed is True
    assert outcome.details["size_bytes"] == DATA_SIZE_1GIB


def test_init_pool_size_too_large(ctx: Context, fake_runner: FakeRunner, fake_device: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        init_pool(ctx, [fake_device], "lvmvol", "pool", PoolSize(size=GiB), known_empty={fake_device: None})
    assert "only 1020.0 MiB is free" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_init_pool_no_device(ctx: Context, fake_runner: FakeRunner) -> None:
    with pytest.raises(InvalidInput) as raised:
        init_pool(ctx, [], "lvmvol", "pool", PoolSize())
    assert "no device given" in str(raised.value)
    assert fake_runner.calls == []


@pytest.mark.parametrize(("vg", "pool"), [("bad vg", "pool"), ("lvmvol", "pool_tdata"), ("-vg", "pool")])
def test_init_pool_invalid_names(ctx: Context, fake_runner: FakeRunner, vg: str, pool: str) -> None:
    with pytest.raises(InvalidInput):
        init_pool(ctx, ["/dev/sdz"], vg, pool, PoolSize())
    assert fake_runner.calls == []


def test_init_pool_missing_device(ctx: Context, fake_runner: FakeRunner, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as raised:
        init_pool(ctx, [str(tmp_path / "nosuch")], "lvmvol", "pool", PoolSize())
    assert "not found" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_init_pool_regular_file_rejected(ctx: Context, fake_runner: FakeRunner, fake_device: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        init_pool(ctx, [fake_device], "lvmvol", "pool", PoolSize())
    assert "is not a block device" in str(raised.value)
    assert "--file" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_init_pool_dm_name_too_long(ctx: Context, fake_runner: FakeRunner, fake_device: str, mount_table) -> None:
    name = "p" * 121
    with pytest.raises(InvalidInput):
        init_pool(ctx, [fake_device], "lvmvol", name, PoolSize(), known_empty={fake_device: None})
    assert fake_runner.executed_mutating() == []


def loop_replies(runner: FakeRunner, device: str) -> None:
    """Make losetup report no loop device for the file, then attach it as ``device``."""
    runner.reply("losetup", Reply(stdout=""), Reply(stdout=device + "\n"))


def test_file_pool_commands(ctx: Context, fake_runner: FakeRunner, fake_device: str, tmp_path: Path, mount_table) -> None:
    backing = tmp_path / "pool file.img"
    loop_replies(fake_runner, fake_device)
    fake_runner.reply("lvs", Reply(stdout=created_pool_output()))
    outcome = init_file_pool(ctx, str(backing), GiB, "lvmvol", "pool", PoolSize())

    loop_tag = tags.setting_tag(tags.LOOP_FILE, str(backing))
    assert ":20" in loop_tag
    assert fake_runner.executed_mutating()[:3] == [
        ["losetup", "--find", "--show", str(backing)],
        ["pvcreate", fake_device],
        ["vgcreate", "--addtag", loop_tag, "--addtag", "lvmvol.vg", "lvmvol", fake_device],
    ]
    assert fake_runner.executed_mutating()[3][0] == "lvcreate"
    assert outcome.changed is True
    assert outcome.details["file"] == str(backing)
    assert outcome.details["loop_device"] == fake_device


def test_file_pool_creates_sparse_file(ctx: Context, fake_runner: FakeRunner, fake_device: str, tmp_path: Path, mount_table) -> None:
    backing = tmp_path / "pool.img"
    loop_replies(fake_runner, fake_device)
    fake_runner.reply("lvs", Reply(stdout=created_pool_output()))
    init_file_pool(ctx, str(backing), GiB, "lvmvol", "pool", PoolSize())
    status = backing.stat()
    assert status.st_size == GiB
    assert stat.S_IMODE(status.st_mode) == 0o600
    assert status.st_blocks * 512 < GiB


def test_file_pool_failure_cleans_up(ctx: Context, fake_runner: FakeRunner, fake_device: str, tmp_path: Path) -> None:
    backing = tmp_path / "pool.img"
    loop_replies(fake_runner, fake_device)
    fake_runner.reply("lvcreate", Reply(returncode=5, stderr="  Volume group \"lvmvol\" has insufficient free space.\n"))
    with pytest.raises(CommandError):
        init_file_pool(ctx, str(backing), GiB, "lvmvol", "pool", PoolSize())
    assert not backing.exists()
    assert fake_runner.calls[-1].argv == ["losetup", "--detach", fake_device]


def test_file_pool_existing_file_other_size(ctx: Context, fake_runner: FakeRunner, tmp_path: Path) -> None:
    backing = tmp_path / "pool.img"
    backing.write_bytes(b"")
    os.truncate(backing, 512 * MiB)
    with pytest.raises(Conflict) as raised:
        init_file_pool(ctx, str(backing), GiB, "lvmvol", "pool", PoolSize())
    message = str(raised.value)
    assert "exists with size 512.0 MiB, not the requested 1.0 GiB" in message
    assert fake_runner.calls == []
    assert backing.stat().st_size == 512 * MiB


def test_file_pool_too_small(ctx: Context, fake_runner: FakeRunner, tmp_path: Path) -> None:
    backing = tmp_path / "pool.img"
    with pytest.raises(InvalidInput) as raised:
        init_file_pool(ctx, str(backing), MIN_FILE_SIZE - 1, "lvmvol", "pool", PoolSize())
    assert "is too small for a thin pool" in str(raised.value)
    assert not backing.exists()
    assert fake_runner.calls == []


def test_file_pool_missing_directory(ctx: Context, fake_runner: FakeRunner, tmp_path: Path) -> None:
    with pytest.raises(NotFound) as raised:
        init_file_pool(ctx, str(tmp_path / "nosuch" / "pool.img"), GiB, "lvmvol", "pool", PoolSize())
    assert "directory" in str(raised.value)
    assert fake_runner.calls == []


def test_file_pool_path_is_directory(ctx: Context, fake_runner: FakeRunner, tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(InvalidInput) as raised:
        init_file_pool(ctx, str(tmp_path / "dir"), GiB, "lvmvol", "pool", PoolSize())
    assert "is not a regular file" in str(raised.value)


def test_file_pool_dry_run_creates_nothing(ctx: Context, fake_runner: FakeRunner, tmp_path: Path) -> None:
    fake_runner.dry_run = True
    backing = tmp_path / "pool.img"
    # The sizing error that a dry run raises today is checked by test_file_pool_dry_run.
    with contextlib.suppress(InvalidInput):
        init_file_pool(ctx, str(backing), GiB, "lvmvol", "pool", PoolSize())
    assert not backing.exists()
    assert fake_runner.executed_mutating() == []


def test_file_pool_dry_run(ctx: Context, fake_runner: FakeRunner, tmp_path: Path) -> None:
    fake_runner.dry_run = True
    outcome = init_file_pool(ctx, str(tmp_path / "pool.img"), GiB, "lvmvol", "pool", PoolSize())
    assert outcome.changed is True
    skipped = [call.command for call in fake_runner.calls if call.dry_run]
    assert skipped == ["losetup", "pvcreate", "vgcreate", "lvcreate"]
