"""``lvmvol pool init`` and ``pool ls`` against real lvm2 on loop devices."""

from __future__ import annotations

import os

from .helpers import lvm_json, run_command
from .lvmvol_fixtures import all_lvs, json_output, lv_names, lv_row, mount_root, thin_pool  # noqa: F401

MiB = 1024 * 1024


def test_pool_init_creates_tagged_thin_pool(loop_device, unique_name, lvmvol):
    device = loop_device("512M")
    vg = unique_name("vg")

    first = lvmvol("pool", "init", device, "--vg", vg, "--name", "tp", "--size", "200M", "--json")

    assert json_output(first)["changed"] is True
    assert json_output(first)["name"] == "tp"
    row = lv_row(vg, "tp")
    assert row is not None
    assert row["segtype"] == "thin-pool"
    assert "lvmvol.pool" in row["lv_tags"].split(",")
    assert int(row["lv_size"]) == 200 * MiB
    pvs = lvm_json("pvs", "-o", "pv_name,vg_name")
    assert {"pv_name": device, "vg_name": vg} in pvs


def test_pool_init_twice_is_unchanged(loop_device, unique_name, lvmvol):
    device = loop_device("512M")
    vg = unique_name("vg")
    argv = ["pool", "init", device, "--vg", vg, "--name", "tp", "--size", "200M"]
    lvmvol(*argv)
    before = all_lvs()

    second = lvmvol(*argv, "--json")

    assert json_output(second)["changed"] is False
    assert all_lvs() == before
    plain = lvmvol(*argv)
    assert plain.stdout.strip() == f"{vg}/tp"
    assert "unchanged" in plain.stderr


def test_pool_init_second_name_adds_pool(loop_device, unique_name, lvmvol):
    device = loop_device("512M")
    vg = unique_name("vg")
    lvmvol("pool", "init", device, "--vg", vg, "--name", "one", "--size", "100M")

    lvmvol("pool", "init", device, "--vg", vg, "--name", "two", "--size", "100M")

    assert lv_row(vg, "one")["segtype"] == "thin-pool"
    assert lv_row(vg, "two")["segtype"] == "thin-pool"
    listed = {(pool["vg"], pool["name"]) for pool in json_output(lvmvol("pool", "ls", "--json"))}
    assert (vg, "one") in listed
    assert (vg, "two") in listed


def test_pool_init_other_size_is_conflict(loop_device, unique_name, lvmvol):
    device = loop_device("512M")
    vg = unique_name("vg")
    lvmvol("pool", "init", device, "--vg", vg, "--name", "tp", "--size", "200M")
    before = all_lvs()

    result = lvmvol("pool", "init", device, "--vg", vg, "--name", "tp", "--size", "300M", check=False)

    assert result.returncode == 4
    assert "200.0 MiB" in result.stderr
    assert all_lvs() == before


def test_pool_init_percent_of_vg(loop_device, unique_name, lvmvol):
    device = loop_device("1G")
    vg = unique_name("vg")

    lvmvol("pool", "init", device, "--vg", vg, "--size", "50%")
    again = lvmvol("pool", "init", device, "--vg", vg, "--size", "50%", "--json")

    vg_size = int(lvm_json("vgs", "-o", "vg_size", vg)[0]["vg_size"])
    pool_row = lv_row(vg, "pool")
    footprint = int(pool_row["lv_size"])
    assert footprint <= vg_size // 2
    assert footprint >= vg_size // 2 - 32 * MiB
    assert json_output(again)["changed"] is False


def test_pool_init_default_size_uses_free_space(loop_device, unique_name, lvmvol):
    device = loop_device("512M")
    vg = unique_name("vg")

    lvmvol("pool", "init", device, "--vg", vg)

    vg_row = lvm_json("vgs", "-o", "vg_size,vg_free,vg_extent_size", vg)[0]
    assert int(vg_row["vg_free"]) < 3 * int(vg_row["vg_extent_size"])
    assert int(lv_row(vg, "pool")["lv_size"]) > 400 * MiB


def test_pool_init_file_backed(unique_name, lvmvol, lvmvol_config, tmp_path):
    # A list of its own: the default one outlives the test, and a later activate would miss the deleted file.
    lvmvol_config["loop_file_list"] = str(tmp_path / "loop-files")
    vg = unique_name("vg")
    backing = os.path.join(os.environ["LVMVOL_VM_SCRATCH"], f"{vg}.img")
    argv = ["pool", "init", "--file", backing, "--file-size", "256M", "--vg", vg, "--name", "fp"]
    try:
        first = json_output(lvmvol(*argv, "--json"))
        second = json_output(lvmvol(*argv, "--json"))

        assert first["changed"] is True
        assert second["changed"] is False
        assert os.path.getsize(backing) == 256 * MiB
        # Sparse: the file takes far less than its size on disk.
        assert os.stat(backing).st_blocks * 512 < 64 * MiB
        loop = first["loop_device"]
        assert second["loop_device"] == loop
        backing_of_loop = run_command(["losetup", "--noheadings", "--output", "BACK-FILE", loop]).stdout.strip()
        assert backing_of_loop == backing
        vg_tags = lvm_json("vgs", "-o", "vg_tags", vg)[0]["vg_tags"].split(",")
        assert f"lvmvol.loopfile={backing}" in vg_tags
        assert lv_row(vg, "fp")["segtype"] == "thin-pool"
    finally:
        run_command(["vgremove", "-ff", vg], check=False)
        for line in run_command(["losetup", "-j", backing], check=False).stdout.splitlines():
            run_command(["losetup", "-d", line.split(":")[0]], check=False)
        if os.path.exists(backing):
            os.unlink(backing)


def test_pool_init_file_size_mismatch(unique_name, lvmvol):
    vg = unique_name("vg")
    backing = os.path.join(os.environ["LVMVOL_VM_SCRATCH"], f"{vg}.img")
    with open(backing, "wb") as handle:
        handle.truncate(100 * MiB)
    try:
        result = lvmvol("pool", "init", "--file", backing, "--file-size", "256M", "--vg", vg, check=False)

        assert result.returncode == 4
        assert "100.0 MiB" in result.stderr
        assert run_command(["losetup", "-j", backing]).stdout.strip() == ""
    finally:
        os.unlink(backing)


def test_pool_init_refuses_device_with_filesystem(loop_device, unique_name, lvmvol):
    device = loop_device("512M")
    vg = unique_name("vg")
    run_command(["mkfs.ext4", "-q", device])

    refused = lvmvol("pool", "init", device, "--vg", vg, check=False)

    assert refused.returncode == 4
    assert "ext4" in refused.stderr
    assert "--force" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert lvm_json("pvs", "-o", "pv_name", "--select", f"pv_name={device}") == []

    without_yes = lvmvol("pool", "init", device, "--vg", vg, "--force", check=False)
    assert without_yes.returncode == 4
    assert lvm_json("pvs", "-o", "pv_name", "--select", f"pv_name={device}") == []

    lvmvol("pool", "init", device, "--vg", vg, "--force", "--yes")
    assert lv_row(vg, "pool")["segtype"] == "thin-pool"


def test_pool_init_refuses_pv_of_other_vg(loop_device, unique_name, lvmvol):
    device = loop_device("512M")
    other = unique_name("vg")
    run_command(["vgcreate", other, device])

    result = lvmvol("pool", "init", device, "--vg", unique_name("vg"), check=False)

    assert result.returncode == 4
    assert other in result.stderr
    assert lvm_json("lvs", "-o", "lv_name", other) == []


def test_pool_init_refuses_mounted_device(loop_device, unique_name, lvmvol, tmp_path):
    device = loop_device("512M")
    run_command(["mkfs.ext4", "-q", device])
    target = tmp_path / "mounted"
    target.mkdir()
    run_command(["mount", device, str(target)])
    try:
        result = lvmvol("pool", "init", device, "--vg", unique_name("vg"), "--force", "--yes", check=False)

        assert result.returncode == 4
        assert str(target) in result.stderr
    finally:
        run_command(["umount", str(target)])


def test_pool_init_wipes_old_signature_under_new_pool(loop_device, unique_name, lvmvol):
    """An LV that lands on space holding an old filesystem is created without a prompt."""
    device = loop_device("512M")
    vg = unique_name("vg")
    run_command(["vgcreate", vg, device])
    run_command(["lvcreate", "-y", "-L", "300M", "-n", "old", vg])
    run_command(["mkfs.ext4", "-q", f"/dev/{vg}/old"])
    run_command(["lvremove", "-y", f"{vg}/old"])

    lvmvol("pool", "init", device, "--vg", vg, "--size", "200M")

    assert lv_row(vg, "pool")["segtype"] == "thin-pool"
    assert lv_names(vg) == {"pool"}


def test_pool_ls_json_fields(thin_pool, lvmvol):
    pools = json_output(lvmvol("pool", "ls", "--json"))

    mine = [pool for pool in pools if pool["vg"] == thin_pool.vg]
    assert len(mine) == 1
    pool = mine[0]
    assert pool["name"] == "pool"
    assert pool["size_bytes"] == 400 * MiB
    assert isinstance(pool["data_percent"], float)
    assert isinstance(pool["metadata_percent"], float)
    assert pool["volumes"] == 0


def test_pool_ls_table_lists_pool(thin_pool, lvmvol):
    output = lvmvol("pool", "ls").stdout

    assert thin_pool.vg in output
    assert "400.0 MiB" in output


def test_pool_init_invalid_names_change_nothing(loop_device, lvmvol):
    device = loop_device("512M")
    before = all_lvs()

    for vg, name in [("bad vg", "pool"), ("-vg", "pool"), ("okvg", "pool_tmeta"), ("okvg", "snapshotp")]:
        result = lvmvol("pool", "init", device, "--vg", vg, "--name", name, check=False)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert all_lvs() == before
    assert lvm_json("pvs", "-o", "pv_name", "--select", f"pv_name={device}") == []
