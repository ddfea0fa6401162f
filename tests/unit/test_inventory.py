"""Pools and volumes read from lvs and the mount table: lvmvol.ops.inventory."""

from __future__ import annotations

import pytest

from lvmvol.errors import InvalidInput, NotFound
from lvmvol.ops.context import Context
from lvmvol.ops.inventory import read_inventory

from .fakes import FakeRunner, Reply, lv_row, lvs_output

MiB = 1024 * 1024


@pytest.fixture
def smoke(ctx: Context, fake_runner: FakeRunner, mount_table):
    """The inventory of the recorded smokevg report, with smokevg/data mounted."""
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    return read_inventory(ctx)


@pytest.fixture
def two_vgs(ctx: Context, fake_runner: FakeRunner, mount_table):
    """The inventory of fastvg and slowvg, which both have a pool "pool" and a volume "db"."""
    fake_runner.reply_report("lvs", "lvs_two_vgs.json")
    return read_inventory(ctx)


def inventory_of(ctx: Context, fake_runner: FakeRunner, *rows):
    fake_runner.reply("lvs", Reply(stdout=lvs_output(*rows)))
    return read_inventory(ctx)


def test_inventory_one_lvs_call(smoke, fake_runner: FakeRunner) -> None:
    assert fake_runner.commands() == ["lvs"]
    assert fake_runner.calls[0].mutating is False


def test_inventory_pools(smoke) -> None:
    # otherpool is a thin pool without the lvmvol.pool tag.
    assert [pool.full_name for pool in smoke.pools] == ["smokevg/pool"]


def test_inventory_volumes(smoke) -> None:
    # scratch (linear, untagged) and the pools are not volumes.
    assert [volume.name for volume in smoke.volumes] == ["data", "snap1", "vol1"]


def test_inventory_all_lvs(smoke) -> None:
    assert len(smoke.all_lvs) == 6


def test_inventory_volume_count(smoke) -> None:
    assert smoke.pools[0].volume_count == 3


def test_pool_needs_thin_pool_segtype(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    linear = lv_row("scratch")
    linear["lv_tags"] = "lvmvol.pool"
    inventory = inventory_of(ctx, fake_runner, linear, lv_row("pool"))
    assert [pool.name for pool in inventory.pools] == ["pool"]


def test_pool_needs_tag(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    inventory = inventory_of(ctx, fake_runner, lv_row("otherpool"))
    assert inventory.pools == []


def test_volume_needs_tag(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    untagged = lv_row("data")
    untagged["lv_tags"] = "lvmvol.fs=ext4"
    inventory = inventory_of(ctx, fake_runner, untagged)
    assert inventory.volumes == []


def test_volume_mounts(smoke) -> None:
    data = smoke.volume("data")
    assert data.mountpoint == "/var/lib/lvmvol/data set"
    assert [entry.mountpoint for entry in data.mounts] == ["/var/lib/lvmvol/data set"]


def test_inactive_volume_not_mounted(smoke) -> None:
    assert smoke.volume("vol1").mounts == []
    assert smoke.volume("vol1").mountpoint is None


def test_volume_properties(smoke) -> None:
    data = smoke.volume("data")
    assert data.full_name == "smokevg/data"
    assert data.filesystem == "ext4"
    assert data.encrypted is False
    assert data.incomplete is False
    assert data.origin is None
    assert data.device == "/dev/mapper/smokevg-data"


def test_volume_without_fs_tag(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    row = lv_row("data")
    row["lv_tags"] = "lvmvol.volume"
    inventory = inventory_of(ctx, fake_runner, row)
    assert inventory.volumes[0].filesystem == "none"


def test_snapshot_origin(smoke) -> None:
    assert smoke.volume("snap1").origin == "vol1"


def test_incomplete_volume(two_vgs) -> None:
    assert two_vgs.volume("slowvg/db").incomplete is True
    assert two_vgs.volume("fastvg/db").incomplete is False


def test_volume_to_dict(smoke) -> None:
    document = smoke.volume("data").to_dict()
    assert document["name"] == "data"
    assert document["vg"] == "smokevg"
    assert document["pool"] == "pool"
    assert document["size_bytes"] == 100 * MiB
    assert document["filesystem"] == "ext4"
    assert document["encrypted"] is False
    assert document["origin"] is None
    assert document["active"] is True
    assert document["open"] is True
    assert document["read_only"] is False
    assert document["mountpoint"] == "/var/lib/lvmvol/data set"
    assert document["mountpoints"] == ["/var/lib/lvmvol/data set"]
    assert document["device"] == "/dev/mapper/smokevg-data"
    assert document["created"] == "2026-12-04T19:53:40+00:00"
    assert document["incomplete"] is False


def test_inactive_volume_to_dict(smoke) -> None:
    document = smoke.volume("vol1").to_dict()
    assert document["active"] is False
    assert document["device"] is None
    assert document["mountpoint"] is None


def test_pool_to_dict(smoke) -> None:
    document = smoke.pools[0].to_dict()
    assert document == {
        "name": "pool",
        "vg": "smokevg",
        "size_bytes": 200 * MiB,
        "data_percent": 12.5,
        "metadata_percent": 10.64,
        "metadata_size_bytes": 4 * MiB,
        "volumes": 3,
        "vg_free_bytes": 161 * 4 * MiB,
        # data 100 MiB + vol1 300 MiB + snap1 300 MiB.
        "committed_bytes": 700 * MiB,
        "committed_ratio": 3.5,
        "data_threshold_percent": 80.0,
        "metadata_threshold_percent": 80.0,
        "past_threshold": False,
    }


def test_pool_committed_counts_unmanaged_thin(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    unmanaged = lv_row("vol1")
    unmanaged["lv_name"] = "foreign"
    unmanaged["lv_tags"] = ""
    inventory = inventory_of(ctx, fake_runner, lv_row("pool"), lv_row("vol1"), unmanaged, lv_row("otherpool"))
    assert inventory.pools[0].committed_bytes == 600 * MiB


@pytest.mark.parametrize(
    ("data", "metadata", "expected"),
    [
        ("79.99", "10.00", []),
        ("80.00", "10.00", ["data 80.0% >= 80%"]),
        ("12.50", "91.20", ["metadata 91.2% >= 80%"]),
        ("99.00", "85.00", ["data 99.0% >= 80%", "metadata 85.0% >= 80%"]),
        ("", "", []),
    ],
)
def test_pool_usage_past_threshold(
    ctx: Context, fake_runner: FakeRunner, mount_table, data: str, metadata: str, expected: list[str]
) -> None:
    pool = lv_row("pool")
    pool["data_percent"] = data
    pool["metadata_percent"] = metadata
    inventory = inventory_of(ctx, fake_runner, pool, lv_row("vol1"))
    assert inventory.pools[0].usage_past_threshold() == expected
    assert inventory.pools[0].past_threshold is bool(expected)
    assert inventory.volumes[0].pool_past_threshold is bool(expected)
    assert inventory.volumes[0].to_dict()["pool_past_threshold"] is bool(expected)


def test_pool_thresholds_from_config(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    ctx.config.pool_data_threshold = 10.0
    inventory = inventory_of(ctx, fake_runner, lv_row("pool"))
    assert inventory.pools[0].usage_past_threshold() == ["data 12.5% >= 10%"]
    assert inventory.pools[0].to_dict()["data_threshold_percent"] == 10.0


def test_find_volume_by_name(smoke) -> None:
    assert smoke.find_volume("vol1").full_name == "smokevg/vol1"


def test_find_volume_by_full_name(smoke) -> None:
    assert smoke.find_volume("smokevg/vol1").name == "vol1"


def test_find_volume_wrong_vg(smoke) -> None:
    assert smoke.find_volume("othervg/vol1") is None


def test_find_volume_missing(smoke) -> None:
    assert smoke.find_volume("nosuch") is None


def test_find_volume_unmanaged_lv(smoke) -> None:
    # scratch exists but is not an lvmvol volume.
    assert smoke.find_volume("scratch") is None
    assert smoke.find_lv("smokevg", "scratch") is not None


def test_find_volume_ambiguous(two_vgs) -> None:
    with pytest.raises(InvalidInput) as raised:
        two_vgs.find_volume("db")
    message = str(raised.value)
    assert "volume name 'db' is ambiguous: fastvg/db, slowvg/db" in message
    assert "pass it as VG/NAME" in message


def test_find_volume_qualified_not_ambiguous(two_vgs) -> None:
    assert two_vgs.find_volume("slowvg/db").vg == "slowvg"


def test_volume_not_found(smoke) -> None:
    with pytest.raises(NotFound) as raised:
        smoke.volume("nosuch")
    message = str(raised.value)
    assert "volume 'nosuch' not found" in message
    assert "lvmvol volume ls" in message
    assert raised.value.exit_code == 3


def test_find_lv(smoke) -> None:
    assert smoke.find_lv("smokevg", "otherpool").segtype == "thin-pool"
    assert smoke.find_lv("othervg", "otherpool") is None


def test_children(smoke) -> None:
    assert [child.name for child in smoke.children(smoke.volume("vol1"))] == ["snap1"]


def test_children_none(smoke) -> None:
    assert smoke.children(smoke.volume("data")) == []
    assert smoke.children(smoke.volume("snap1")) == []


def test_children_same_vg_only(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    origin = lv_row("vol1")
    snapshot = lv_row("snap1")
    elsewhere = lv_row("snap1")
    elsewhere["vg_name"] = "othervg"
    elsewhere["lv_name"] = "snap2"
    inventory = inventory_of(ctx, fake_runner, origin, snapshot, elsewhere)
    assert [child.full_name for child in inventory.children(inventory.volume("vol1"))] == ["smokevg/snap1"]


def test_resolve_pool_only_pool(smoke) -> None:
    assert smoke.resolve_pool(None).full_name == "smokevg/pool"


def test_resolve_pool_explicit_name(smoke) -> None:
    assert smoke.resolve_pool("pool").full_name == "smokevg/pool"


def test_resolve_pool_explicit_full_name(two_vgs) -> None:
    assert two_vgs.resolve_pool("slowvg/pool").full_name == "slowvg/pool"


def test_resolve_pool_unique_name(two_vgs) -> None:
    assert two_vgs.resolve_pool("archive").full_name == "slowvg/archive"


def test_resolve_pool_default(two_vgs) -> None:
    assert two_vgs.resolve_pool(None, "fastvg/pool").full_name == "fastvg/pool"


def test_resolve_pool_spec_overrides_default(two_vgs) -> None:
    assert two_vgs.resolve_pool("slowvg/archive", "fastvg/pool").full_name == "slowvg/archive"


def test_resolve_pool_ambiguous_name(two_vgs) -> None:
    with pytest.raises(InvalidInput) as raised:
        two_vgs.resolve_pool("pool")
    message = str(raised.value)
    assert "pool name 'pool' is ambiguous (fastvg/pool, slowvg/archive, slowvg/pool)" in message
    assert "pass it as VG/NAME" in message


def test_resolve_pool_several_without_default(two_vgs) -> None:
    with pytest.raises(InvalidInput) as raised:
        two_vgs.resolve_pool(None)
    message = str(raised.value)
    assert "several pools exist (fastvg/pool, slowvg/archive, slowvg/pool)" in message
    assert "--pool VG/NAME" in message
    assert raised.value.exit_code == 2


def test_resolve_pool_missing(smoke) -> None:
    with pytest.raises(NotFound) as raised:
        smoke.resolve_pool("smokevg/otherpool")
    message = str(raised.value)
    assert "pool 'smokevg/otherpool' not found (pools: smokevg/pool)" in message
    assert raised.value.exit_code == 3


def test_resolve_pool_missing_default(smoke) -> None:
    with pytest.raises(NotFound) as raised:
        smoke.resolve_pool(None, "gone/pool")
    assert "pool 'gone/pool' not found" in str(raised.value)


def test_resolve_pool_none_exists(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    inventory = inventory_of(ctx, fake_runner, lv_row("scratch"))
    with pytest.raises(NotFound) as raised:
        inventory.resolve_pool(None)
    message = str(raised.value)
    assert "no thin pool managed by lvmvol exists" in message
    assert "lvmvol pool init" in message


def test_resolve_pool_none_exists_explicit(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    inventory = inventory_of(ctx, fake_runner)
    with pytest.raises(NotFound) as raised:
        inventory.resolve_pool("pool")
    assert "(pools: none)" in str(raised.value)


def test_inventory_empty_output(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    fake_runner.reply("lvs", Reply(stdout=""))
    inventory = read_inventory(ctx)
    assert inventory.pools == []
    assert inventory.volumes == []
