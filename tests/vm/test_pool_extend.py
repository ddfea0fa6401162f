"""pool extend against real lvm2: a new device in the VG, and a grown loop file."""

from __future__ import annotations

import os

from .helpers import lvm_json, pv_label_present, run_command
from .lifecycle_fixtures import file_pool, lv_size, loop_devices_of  # noqa: F401
from .lvmvol_fixtures import all_lvs, json_output, lv_row, mount_root, read_file, thin_pool, write_file  # noqa: F401

MiB = 1024 * 1024


def pool_metadata_size(vg: str, name: str) -> int:
    rows = lvm_json("lvs", "-o", "lv_name,lv_metadata_size", vg)
    return int(next(row["lv_metadata_size"] for row in rows if row["lv_name"] == name))


def test_pool_extend_adds_device(thin_pool, loop_device, lvmvol):
    mountpoint = lvmvol("volume", "mount", lvmvol("volume", "create", "kept", "--size", "32M").stdout.strip()).stdout.strip()
    write_file(mountpoint, "data.txt", "kept")
    used = loop_device("256M")
    run_command(["mkfs.ext4", "-q", used])
    refused = lvmvol("pool", "extend", thin_pool.spec, used, check=False)
    assert refused.returncode == 4
    assert "ext4" in refused.stderr
    before = all_lvs()
    assert not pv_label_present(used)
    second_disk = loop_device("256M")

    grown = json_output(lvmvol("pool", "extend", thin_pool.spec, second_disk, "--json"))

    assert grown["changed"] is True
    assert before != all_lvs()
    vg_row = lvm_json("vgs", "-o", "pv_count,vg_free,vg_extent_size", thin_pool.vg)[0]
    assert vg_row["pv_count"] == "2"
    # All free space went to the pool; lvm2 may keep less than one extent back.
    assert int(vg_row["vg_free"]) < 2 * int(vg_row["vg_extent_size"])
    assert lv_size(thin_pool.vg, "pool") == grown["size_bytes"]
    assert grown["size_bytes"] > 400 * MiB + 200 * MiB
    assert read_file(mountpoint, "data.txt") == "kept"
    again = json_output(lvmvol("pool", "extend", thin_pool.spec, second_disk, "--json"))
    assert again["changed"] is False


def test_pool_extend_grows_loop_file(file_pool, lvmvol):
    pool = file_pool("256M")
    metadata_before = pool_metadata_size(pool.vg, pool.name)

    grown = json_output(lvmvol("pool", "extend", pool.spec, "--size", "2560M", "--json"))

    assert grown["changed"] is True
    assert lv_size(pool.vg, pool.name) == 2560 * MiB
    # Metadata grows with the data: 1/512 of it, rounded up to 4 MiB extents.
    assert pool_metadata_size(pool.vg, pool.name) == 8 * MiB > metadata_before
    assert os.path.getsize(pool.backing) > 2560 * MiB
    loop = loop_devices_of(pool.backing)[0]
    pv = lvm_json("pvs", "-o", "pv_name,pv_size", loop)[0]
    assert int(pv["pv_size"]) > 2560 * MiB
    again = json_output(lvmvol("pool", "extend", pool.spec, "--size", "2560M", "--json"))
    assert again["changed"] is False

    added = json_output(lvmvol("pool", "extend", pool.spec, "--size", "+64M", "--json"))

    assert added["changed"] is True
    assert lv_size(pool.vg, pool.name) == 2624 * MiB
    assert lv_row(pool.vg, pool.name)["segtype"] == "thin-pool"
