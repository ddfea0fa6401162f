"""``lvmvol volume create/ls/show/mount/umount/rm`` against real lvm2, filesystems and mounts."""

from __future__ import annotations

import os
import re
import subprocess

from .helpers import lvm_json, run_command
from .lvmvol_fixtures import (  # noqa: F401
    all_lvs,
    big_thin_pool,
    filesystem_type,
    json_output,
    lv_names,
    lv_row,
    mount_root,
    mountpoints_of,
    thin_pool,
)

MiB = 1024 * 1024


def test_create_makes_thin_volume_with_ext4(thin_pool, lvmvol):
    result = lvmvol("volume", "create", "data", "--size", "64M")

    assert result.stdout == "data\n"
    row = lv_row(thin_pool.vg, "data")
    assert row["segtype"] == "thin"
    assert row["pool_lv"] == "pool"
    assert int(row["lv_size"]) == 64 * MiB
    tags = row["lv_tags"].split(",")
    assert "lvmvol.volume" in tags
    assert "lvmvol.fs=ext4" in tags
    assert "lvmvol.incomplete" not in tags
    assert filesystem_type(row["lv_dm_path"]) == "ext4"


def test_create_twice_is_unchanged(thin_pool, lvmvol):
    lvmvol("volume", "create", "data", "--size", "64M")
    before = all_lvs()

    again = lvmvol("volume", "create", "data", "--size", "64M", "--json")

    assert json_output(again)["changed"] is False
    assert json_output(again)["name"] == "data"
    assert all_lvs() == before


def test_create_other_spec_is_conflict(thin_pool, lvmvol):
    lvmvol("volume", "create", "data", "--size", "64M")
    before = all_lvs()

    other_size = lvmvol("volume", "create", "data", "--size", "128M", check=False)
    other_fs = lvmvol("volume", "create", "data", "--size", "64M", "--fs", "none", check=False)

    assert other_size.returncode == 4
    assert "128.0 MiB" in other_size.stderr
    assert len(other_size.stderr.strip().splitlines()) == 1
    assert other_fs.returncode == 4
    assert "filesystem" in other_fs.stderr
    assert all_lvs() == before


def test_create_generates_name(thin_pool, lvmvol):
    result = lvmvol("volume", "create", "--size", "32M")

    name = result.stdout.strip()
    assert re.fullmatch(r"vol-[0-9a-f]{8}", name)
    assert name in lv_names(thin_pool.vg)


def test_create_xfs_volume(big_thin_pool, lvmvol):
    lvmvol("volume", "create", "xdata", "--size", "300M", "--fs", "xfs")

    row = lv_row(big_thin_pool.vg, "xdata")
    assert filesystem_type(row["lv_dm_path"]) == "xfs"
    assert "lvmvol.fs=xfs" in row["lv_tags"].split(",")


def test_create_small_xfs_rejected_first(thin_pool, lvmvol):
    before = all_lvs()

    result = lvmvol("volume", "create", "small", "--size", "100M", "--fs", "xfs", check=False)

    assert result.returncode == 2
    assert "300.0 MiB" in result.stderr
    assert all_lvs() == before


def test_create_without_filesystem(thin_pool, lvmvol):
    lvmvol("volume", "create", "raw", "--size", "32M", "--fs", "none")

    row = lv_row(thin_pool.vg, "raw")
    assert filesystem_type(row["lv_dm_path"]) == ""
    mount = lvmvol("volume", "mount", "raw", check=False)
    assert mount.returncode == 2
    assert "no filesystem" in mount.stderr


def test_create_rounds_up_to_extent(thin_pool, lvmvol):
    result = lvmvol("volume", "create", "odd", "--size", "5000000B", "--json")

    extent = int(lvm_json("vgs", "-o", "vg_extent_size", thin_pool.vg)[0]["vg_extent_size"])
    size = int(lv_row(thin_pool.vg, "odd")["lv_size"])
    assert size % extent == 0
    assert size >= 5000000
    assert json_output(result)["size_bytes"] == size
    assert json_output(result)["requested_size_bytes"] == 5000000
    plain = lvmvol("volume", "create", "odd2", "--size", "5000000B")
    assert "5000000 bytes" in plain.stderr
    assert str(size) in plain.stderr


def test_create_decimal_and_binary_units(thin_pool, lvmvol):
    lvmvol("volume", "create", "bin", "--size", "100M")
    lvmvol("volume", "create", "dec", "--size", "100MB")

    assert int(lv_row(thin_pool.vg, "bin")["lv_size"]) == 100 * MiB
    decimal = int(lv_row(thin_pool.vg, "dec")["lv_size"])
    assert 100_000_000 <= decimal < 100 * MiB


def test_ls_json_matches_lvs(thin_pool, lvmvol):
    lvmvol("volume", "create", "one", "--size", "32M")
    lvmvol("volume", "create", "two", "--size", "48M", "--fs", "none")
    lvmvol("snapshot", "one", "one-snap")

    listed = [volume for volume in json_output(lvmvol("volume", "ls", "--json")) if volume["vg"] == thin_pool.vg]

    rows = {
        row["lv_name"]: row
        for row in lvm_json("lvs", "-o", "lv_name,lv_size,origin,lv_active,pool_lv", thin_pool.vg)
        if row["lv_name"] != "pool"
    }
    assert {volume["name"] for volume in listed} == set(rows)
    for volume in listed:
        row = rows[volume["name"]]
        assert volume["size_bytes"] == int(row["lv_size"])
        assert volume["origin"] == (row["origin"] or None)
        assert volume["active"] is (row["lv_active"] == "active")
        assert volume["pool"] == row["pool_lv"]
        assert volume["encrypted"] is False
        assert volume["mountpoint"] is None


def test_ls_table_shows_volumes(thin_pool, lvmvol):
    lvmvol("volume", "create", "shown", "--size", "32M")

    output = lvmvol("volume", "ls").stdout

    assert "shown" in output
    assert "32.0 MiB" in output


def test_show_json(thin_pool, lvmvol):
    lvmvol("volume", "create", "data", "--size", "32M")
    lvmvol("snapshot", "data", "data-s1")

    shown = json_output(lvmvol("volume", "show", "data", "--json"))
    by_vg_name = json_output(lvmvol("volume", "show", f"{thin_pool.vg}/data", "--json"))

    assert shown["name"] == "data"
    assert shown["vg"] == thin_pool.vg
    assert shown["size_bytes"] == 32 * MiB
    assert shown["snapshots"] == ["data-s1"]
    assert shown["active"] is True
    assert by_vg_name == shown
    missing = lvmvol("volume", "show", "nosuch", check=False)
    assert missing.returncode == 3
    assert "nosuch" in missing.stderr


def test_mount_default_mountpoint(thin_pool, lvmvol, mount_root):
    lvmvol("volume", "create", "data", "--size", "64M")
    device = lv_row(thin_pool.vg, "data")["lv_dm_path"]

    first = lvmvol("volume", "mount", "data")
    second = lvmvol("volume", "mount", "data", "--json")

    expected = str(mount_root / "data")
    assert first.stdout.strip() == expected
    assert json_output(second)["changed"] is False
    assert mountpoints_of(device) == [expected]
    with open(os.path.join(expected, "hello.txt"), "w") as handle:
        handle.write("hello")
    listed = json_output(lvmvol("volume", "show", "data", "--json"))
    assert listed["mountpoint"] == expected


def test_mount_explicit_mountpoint(thin_pool, lvmvol, tmp_path):
    lvmvol("volume", "create", "data", "--size", "64M")
    target = tmp_path / "srv" / "data"

    lvmvol("volume", "mount", "data", str(target))

    device = lv_row(thin_pool.vg, "data")["lv_dm_path"]
    assert mountpoints_of(device) == [str(target)]
    elsewhere = lvmvol("volume", "mount", "data", str(tmp_path / "other"), check=False)
    assert elsewhere.returncode == 4
    assert str(target) in elsewhere.stderr
    lvmvol("volume", "umount", "data")


def test_umount_twice_and_removes_directory(thin_pool, lvmvol, mount_root):
    lvmvol("volume", "create", "data", "--size", "64M")
    lvmvol("volume", "mount", "data")
    device = lv_row(thin_pool.vg, "data")["lv_dm_path"]

    first = lvmvol("volume", "umount", "data", "--json")
    second = lvmvol("volume", "umount", "data", "--json")

    assert json_output(first)["changed"] is True
    assert json_output(second)["changed"] is False
    assert mountpoints_of(device) == []
    assert not (mount_root / "data").exists()


def test_data_survives_umount_and_mount(thin_pool, lvmvol):
    lvmvol("volume", "create", "data", "--size", "64M")
    target = lvmvol("volume", "mount", "data").stdout.strip()
    with open(os.path.join(target, "payload"), "w") as handle:
        handle.write("persistent")
    lvmvol("volume", "umount", "data")

    target = lvmvol("volume", "mount", "data").stdout.strip()

    with open(os.path.join(target, "payload")) as handle:
        assert handle.read() == "persistent"
    lvmvol("volume", "umount", "data")


def test_mount_activates_inactive_volume(thin_pool, lvmvol):
    lvmvol("volume", "create", "data", "--size", "64M")
    run_command(["lvchange", "-an", f"{thin_pool.vg}/data"])
    assert lv_row(thin_pool.vg, "data")["lv_active"] == ""
    assert json_output(lvmvol("volume", "show", "data", "--json"))["active"] is False

    target = lvmvol("volume", "mount", "data").stdout.strip()

    assert lv_row(thin_pool.vg, "data")["lv_active"] == "active"
    assert mountpoints_of(lv_row(thin_pool.vg, "data")["lv_dm_path"]) == [target]
    lvmvol("volume", "umount", "data")


def test_rm_removes_and_second_run_unchanged(thin_pool, lvmvol):
    lvmvol("volume", "create", "gone", "--size", "32M")

    first = lvmvol("volume", "rm", "gone", "--json")
    second = lvmvol("volume", "rm", "gone", "--json")

    assert json_output(first)[0]["changed"] is True
    assert json_output(second)[0]["changed"] is False
    assert "gone" not in lv_names(thin_pool.vg)


def test_rm_refuses_mounted_volume(thin_pool, lvmvol):
    lvmvol("volume", "create", "busy", "--size", "32M")
    target = lvmvol("volume", "mount", "busy").stdout.strip()

    refused = lvmvol("volume", "rm", "busy", check=False)
    no_confirmation = lvmvol("volume", "rm", "busy", "--force", check=False)

    assert refused.returncode == 4
    assert target in refused.stderr
    assert "--force" in refused.stderr
    assert no_confirmation.returncode == 4
    assert "pass --yes" in no_confirmation.stderr
    assert len(no_confirmation.stderr.strip().splitlines()) == 1
    assert "busy" in lv_names(thin_pool.vg)

    lvmvol("volume", "rm", "busy", "--force", "--yes")
    assert "busy" not in lv_names(thin_pool.vg)
    assert not os.path.exists(target)


def test_rm_names_mount_in_other_namespace(thin_pool, lvmvol, tmp_path):
    """A mount that only another mount namespace sees still blocks removal, with its holder named."""
    lvmvol("volume", "create", "hidden", "--size", "32M")
    device = lv_row(thin_pool.vg, "hidden")["lv_dm_path"]
    target = tmp_path / "ns-mount"
    target.mkdir()
    holder = subprocess.Popen(
        [
            "unshare", "--mount", "--propagation", "private", "sh", "-c",
            f"mount {device} {target} && echo mounted && exec sleep 120",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "mounted"
        assert mountpoints_of(device) == []

        refused = lvmvol("volume", "rm", "hidden", check=False)

        assert refused.returncode == 4
        assert str(target) in refused.stderr
        assert str(holder.pid) in refused.stderr
        assert "hidden" in lv_names(thin_pool.vg)
    finally:
        holder.kill()
        holder.wait()
    lvmvol("volume", "rm", "hidden")
    assert "hidden" not in lv_names(thin_pool.vg)


def test_rm_refuses_open_device(thin_pool, lvmvol):
    lvmvol("volume", "create", "held", "--size", "32M", "--fs", "none")
    device = lv_row(thin_pool.vg, "held")["lv_dm_path"]
    holder = subprocess.Popen(["sh", "-c", f"exec 3<{device}; echo open; exec sleep 120"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"

        refused = lvmvol("volume", "rm", "held", check=False)

        assert refused.returncode == 4
        assert "open" in refused.stderr
        assert "held" in lv_names(thin_pool.vg)
    finally:
        holder.kill()
        holder.wait()


def test_rm_checks_all_before_removing(thin_pool, lvmvol):
    lvmvol("volume", "create", "free1", "--size", "32M")
    lvmvol("volume", "create", "busy1", "--size", "32M")
    lvmvol("volume", "mount", "busy1")

    refused = lvmvol("volume", "rm", "free1", "busy1", check=False)

    assert refused.returncode == 4
    assert {"free1", "busy1"} <= lv_names(thin_pool.vg)
    lvmvol("volume", "umount", "busy1")


def test_dry_run_changes_nothing(thin_pool, lvmvol):
    before = all_lvs()

    result = lvmvol("--dry-run", "volume", "create", "planned", "--size", "32M")

    assert "would run: lvcreate" in result.stderr
    assert "would run: mkfs.ext4" in result.stderr
    assert all_lvs() == before


def test_verbose_shows_commands(thin_pool, lvmvol):
    result = lvmvol("--verbose", "volume", "create", "loud", "--size", "32M")

    assert re.search(r"^lvmvol: run: lvcreate .*--thinpool pool", result.stderr, re.MULTILINE)
    assert re.search(r"^lvmvol: run: mkfs.ext4 ", result.stderr, re.MULTILINE)


def test_pool_choice_ambiguous_lists_pools(loop_device, unique_name, lvmvol, lvmvol_config):
    device = loop_device("512M")
    vg = unique_name("vg")
    lvmvol("pool", "init", device, "--vg", vg, "--name", "p1", "--size", "100M")
    lvmvol("pool", "init", device, "--vg", vg, "--name", "p2", "--size", "100M")

    ambiguous = lvmvol("volume", "create", "x", "--size", "32M", check=False)
    chosen = lvmvol("volume", "create", "x", "--size", "32M", "--pool", f"{vg}/p2")

    assert ambiguous.returncode == 2
    assert f"{vg}/p1" in ambiguous.stderr
    assert f"{vg}/p2" in ambiguous.stderr
    assert chosen.stdout.strip() == "x"
    assert lv_row(vg, "x")["pool_lv"] == "p2"
    lvmvol_config["pool"] = "p1"
    lvmvol("volume", "create", "y", "--size", "32M")
    assert lv_row(vg, "y")["pool_lv"] == "p1"
