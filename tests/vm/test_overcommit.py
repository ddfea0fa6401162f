"""The over-commit guard on a real thin pool: a 1 GiB volume on a 68 MiB pool, and a pool filled past 80 %."""

from __future__ import annotations

import re
import time

import pytest

from .helpers import lvm_json, run_command
from .lvmvol_fixtures import ThinPool, json_output, lv_names, lv_row, make_thin_pool, mount_root  # noqa: F401

MiB = 1024 * 1024


@pytest.fixture
def tiny_pool(loop_device, unique_name, lvmvol, lvmvol_config, mount_root) -> ThinPool:
    """A 68 MiB thin pool on a 128 MiB loop device, configured as the default pool."""
    return make_thin_pool(loop_device, unique_name, lvmvol, lvmvol_config, mount_root, "128M", "68M")


def pool_use(pool: ThinPool) -> tuple[float, float]:
    row = lvm_json("lvs", "-o", "data_percent,metadata_percent", pool.spec)[0]
    return float(row["data_percent"]), float(row["metadata_percent"])


def fill(pool: ThinPool, device: str, mib: int) -> tuple[float, float]:
    """Write MIB random MiB to DEVICE, then return the pool's use once it no longer changes.

    dm-thin updates its metadata use when it commits a transaction, which happens on a
    flush or about once a second. conv=fsync sends the flush, and the settle loop covers a
    commit that is still under way, so the figures the test compares against are the
    ones lvmvol reads a moment later.
    """
    run_command(["dd", "if=/dev/urandom", f"of={device}", "bs=1M", f"count={mib}", "oflag=direct", "conv=fsync", "status=none"])
    use = pool_use(pool)
    for _ in range(15):
        time.sleep(1)
        settled = pool_use(pool)
        if settled == use:
            return use
        use = settled
    raise AssertionError(f"the use of thin pool {pool.spec} kept changing after the write: last {use}")


def test_overcommit_refused_then_allowed(tiny_pool, lvmvol):
    refused = lvmvol("volume", "create", "big", "--size", "1G", check=False)

    assert refused.returncode == 4
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "cannot add a 1.0 GiB volume to thin pool" in refused.stderr
    assert "would total 1.0 GiB, 15.1 times its 68.0 MiB of data space, and overcommit_ratio allows 2" in refused.stderr
    assert "--allow-overcommit" in refused.stderr
    assert "big" not in lv_names(tiny_pool.vg)

    allowed = lvmvol("volume", "create", "big", "--size", "1G", "--allow-overcommit")

    assert allowed.stdout == "big\n"
    assert "over-committed" in allowed.stderr
    assert lv_row(tiny_pool.vg, "big")["lv_size"] == str(1024 * MiB)
    snapshot_refused = lvmvol("snapshot", "big", "big-s1", check=False)
    assert snapshot_refused.returncode == 4
    assert "cannot add a snapshot of big (1.0 GiB)" in snapshot_refused.stderr
    assert "big-s1" not in lv_names(tiny_pool.vg)
    lvmvol("snapshot", "big", "big-s1", "--allow-overcommit")
    assert lv_row(tiny_pool.vg, "big-s1")["origin"] == "big"


def test_overcommit_ratio_from_config(tiny_pool, lvmvol, lvmvol_config):
    lvmvol_config["overcommit_ratio"] = 20

    lvmvol("volume", "create", "big", "--size", "1G")

    assert "big" in lv_names(tiny_pool.vg)


def test_full_pool_refuses_and_is_flagged(tiny_pool, lvmvol):
    lvmvol("volume", "create", "raw", "--size", "1G", "--fs", "none", "--allow-overcommit")
    device = lv_row(tiny_pool.vg, "raw")["lv_dm_path"]
    # 58 MiB of 68 MiB is 85 %: past the 80 % threshold, short of a full pool.
    data, metadata = fill(tiny_pool, device, 58)
    assert 80 <= data < 100

    for command in (
        ["snapshot", "raw", "raw-s1"],
        ["snapshot", "raw", "raw-s1", "--allow-overcommit"],
        ["volume", "create", "small", "--size", "4M", "--fs", "none", "--allow-overcommit"],
    ):
        result = lvmvol(*command, check=False)
        assert result.returncode == 4, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert f"past its threshold (data {data:.1f}% >= 80%)" in result.stderr
        assert f"with data {data:.1f}% and metadata {metadata:.1f}% in use" in result.stderr
        assert f"lvextend --size +SIZE {tiny_pool.spec}" in result.stderr
        assert "remove snapshots" in result.stderr
    assert lv_names(tiny_pool.vg) & {"raw-s1", "small"} == set()

    pools = [pool for pool in json_output(lvmvol("pool", "ls", "--json")) if pool["vg"] == tiny_pool.vg]
    assert pools[0]["past_threshold"] is True
    assert pools[0]["committed_bytes"] == 1024 * MiB
    table = lvmvol("pool", "ls").stdout.splitlines()
    assert table[0].split()[-1] == "WARNING"
    assert any(line.startswith("pool ") and tiny_pool.vg in line and f"data {data:.1f}% >= 80%" in line for line in table)
    volumes = [volume for volume in json_output(lvmvol("volume", "ls", "--json")) if volume["vg"] == tiny_pool.vg]
    assert volumes[0]["pool_past_threshold"] is True
    assert any(re.search(r"^raw\s.*\spool \(full\)\s", line) for line in lvmvol("volume", "ls").stdout.splitlines())
    tree_line = [line for line in lvmvol("tree").stdout.splitlines() if tiny_pool.spec in line][0]
    assert f"(full) data {data:.1f}% >= 80%" in tree_line


def test_threshold_from_config(tiny_pool, lvmvol, lvmvol_config):
    lvmvol("volume", "create", "raw", "--size", "64M", "--fs", "none")
    device = lv_row(tiny_pool.vg, "raw")["lv_dm_path"]
    data, _ = fill(tiny_pool, device, 20)
    assert 25 <= data < 50

    lvmvol_config["pool_data_threshold"] = 25
    refused = lvmvol("snapshot", "raw", "raw-s1", check=False)
    lvmvol_config["pool_data_threshold"] = 50
    accepted = lvmvol("snapshot", "raw", "raw-s1")

    assert refused.returncode == 4
    assert f"data {data:.1f}% >= 25%" in refused.stderr
    assert accepted.stdout == "raw-s1\n"


def test_resize_checked_like_create(tiny_pool, lvmvol):
    lvmvol("volume", "create", "grow", "--size", "32M")

    refused = lvmvol("volume", "resize", "grow", "--size", "+1G", check=False)

    assert refused.returncode == 4
    assert "of growth for volume grow" in refused.stderr
    assert "--allow-overcommit" in refused.stderr
    assert lv_row(tiny_pool.vg, "grow")["lv_size"] == str(32 * MiB)
    lvmvol("volume", "resize", "grow", "--size", "+64M", "--allow-overcommit")
    assert lv_row(tiny_pool.vg, "grow")["lv_size"] == str(96 * MiB)
