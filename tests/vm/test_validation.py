"""Bad input fails before any command runs, and device waits go through udev."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from lvmvol.errors import DeviceTimeout
from lvmvol.udev import wait_for_node

from .helpers import run_command
from .lvmvol_fixtures import all_lvs, lv_names, mount_root, thin_pool  # noqa: F401

BAD_NAMES = ["snapshot-2024", "data_tmeta", "a b", "-x", "x" * 200, ".", "..", "pvmove0", "vol_rimage_0", "ü"]
BAD_SIZES = ["10", "10X", "0M", "-5M", "1.5B", "M", ""]


def test_create_bad_names_change_nothing(thin_pool, lvmvol):
    before = all_lvs()

    for name in BAD_NAMES:
        result = lvmvol("--verbose", "volume", "create", "--size", "32M", "--", name, check=False)

        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (name, result.stderr)
        assert "lvcreate" not in result.stderr
        assert "Traceback" not in result.stderr
    assert all_lvs() == before


def test_long_name_limit_counts_mapping_name(thin_pool, lvmvol):
    """The limit leaves room for the dm-crypt name 'luks-VG-NAME' with doubled hyphens."""
    room = 127 - len(f"luks-{thin_pool.vg}-")
    fits = "a" * room
    too_long = "a" * (room + 1)
    hyphens = "a-" * (room // 2)

    assert lvmvol("volume", "create", fits, "--size", "32M", "--fs", "none").returncode == 0
    refused = lvmvol("volume", "create", too_long, "--size", "32M", check=False)
    refused_hyphens = lvmvol("volume", "create", hyphens, "--size", "32M", check=False)

    assert refused.returncode == 2
    assert "127" in refused.stderr
    assert refused_hyphens.returncode == 2
    assert fits in lv_names(thin_pool.vg)


def test_create_bad_sizes_change_nothing(thin_pool, lvmvol):
    before = all_lvs()

    for size in BAD_SIZES:
        result = lvmvol("--verbose", "volume", "create", "sized", f"--size={size}", check=False)

        assert result.returncode == 2, (size, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (size, result.stderr)
        assert "run:" not in result.stderr
    assert all_lvs() == before


def test_lvm_rejects_what_lvmvol_rejects(thin_pool):
    """lvm2 itself refuses the reserved names lvmvol refuses, so the rules match the real tool."""
    for name in ["data_tmeta", "snapshot-2024", "x_rimage_1"]:
        result = run_command(
            ["lvcreate", "-y", "-V", "8M", "--thinpool", "pool", "-n", name, thin_pool.vg], check=False
        )
        assert result.returncode != 0, name
    assert lv_names(thin_pool.vg) == {"pool"}


def test_bad_config_is_one_line(lvmvol, lvmvol_config):
    lvmvol_config.write_text('unknown_key = 1\n')

    result = lvmvol("volume", "ls", check=False)

    assert result.returncode == 2
    assert "unknown_key" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_wait_for_node_returns_when_udev_creates_it(unique_name):
    name = unique_name("wait")
    path = f"/dev/mapper/{name}"

    def create_later() -> None:
        time.sleep(1.0)
        subprocess.run(["dmsetup", "create", name, "--table", "0 8 zero"], check=True)

    creator = threading.Thread(target=create_later)
    creator.start()
    try:
        waited = wait_for_node(path, timeout=60)
        creator.join()

        assert waited >= 0.9
        run_command(["dmsetup", "remove", name])
        gone_after = wait_for_node(path, timeout=60, present=False)
        assert gone_after >= 0
    finally:
        creator.join()
        subprocess.run(["dmsetup", "remove", name], check=False, capture_output=True)


def test_wait_for_node_timeout_names_device():
    path = "/dev/mapper/lvmvol-never-there"

    with pytest.raises(DeviceTimeout) as raised:
        wait_for_node(path, timeout=1.5)

    assert path in str(raised.value)
    assert "1.5 s" in str(raised.value)
