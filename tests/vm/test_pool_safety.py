"""Device checks at ``pool init``, pool monitoring and autoextend, and ``pool rm``."""

from __future__ import annotations

import os
import struct

from .helpers import lvm_json, run_command
from .lvmvol_fixtures import json_output, lv_row, mount_root, thin_pool  # noqa: F401

MiB = 1024 * 1024


def pv_of(device: str) -> list[dict[str, str]]:
    return lvm_json("pvs", "-o", "pv_name", "--select", f"pv_name={device}")


def test_init_refuses_active_swap(loop_device, unique_name, lvmvol):
    device = loop_device("128M")
    run_command(["mkswap", device])
    run_command(["swapon", device])
    try:
        refused = lvmvol("pool", "init", device, "--vg", unique_name("vg"), "--force", "--yes", check=False)
    finally:
        run_command(["swapoff", device])

    assert refused.returncode == 4, refused.stderr
    assert "active swap area" in refused.stderr
    assert pv_of(device) == []


def test_init_refuses_exclusively_open_device(loop_device, unique_name, lvmvol):
    device = loop_device("128M")
    descriptor = os.open(device, os.O_RDONLY | os.O_EXCL)
    try:
        refused = lvmvol("pool", "init", device, "--vg", unique_name("vg"), check=False)
    finally:
        os.close(descriptor)

    assert refused.returncode == 4, refused.stderr
    assert "open exclusively" in refused.stderr
    assert pv_of(device) == []


def write_dos_partition_table(device: str) -> None:
    """Write an MBR with one Linux partition from sector 2048 to 64 MiB (no partitioning tool is installed)."""
    entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, 64 * 2048 - 2048)
    sector = bytearray(512)
    sector[446:446 + 16] = entry
    sector[510:512] = b"\x55\xaa"
    with open(device, "r+b") as handle:
        handle.write(sector)
        os.fsync(handle.fileno())


def test_init_lists_every_signature(loop_device, unique_name, lvmvol, tmp_path):
    device = loop_device("128M")
    write_dos_partition_table(device)
    run_command(["mkfs.ext4", "-q", "-F", device])
    write_dos_partition_table(device)
    vg = unique_name("vg")

    refused = lvmvol("pool", "init", device, "--vg", vg, check=False)
    declined = lvmvol("pool", "init", device, "--vg", vg, "--force", check=False)

    assert refused.returncode == 4, refused.stderr
    assert "dos at offset 0x1fe" in refused.stderr
    assert "ext4 at offset 0x438" in refused.stderr
    assert "--force --yes" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert declined.returncode == 4
    assert pv_of(device) == []
    lvmvol("pool", "init", device, "--vg", vg, "--size", "64M", "--force", "--yes")
    assert lv_row(vg, "pool")["segtype"] == "thin-pool"


def test_init_refuses_luks_device(loop_device, unique_name, lvmvol, tmp_path):
    device = loop_device("128M")
    key = tmp_path / "key"
    key.write_bytes(b"k" * 32)
    run_command(["cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
                 "--pbkdf-force-iterations", "1000", "--key-file", str(key), device])

    refused = lvmvol("pool", "init", device, "--vg", unique_name("vg"), check=False)

    assert refused.returncode == 4, refused.stderr
    assert "crypto_LUKS at offset 0x0" in refused.stderr
    assert pv_of(device) == []


def test_init_names_lvm_filter_rejection(loop_device, unique_name, lvmvol, tmp_path):
    device = loop_device("128M")
    system_dir = tmp_path / "lvm"
    system_dir.mkdir()
    # lvm2 accepts a device when any of its names (such as /dev/block/7:N)
    # matches an "a" pattern first, so the filter rejects all but /dev/sd*.
    (system_dir / "lvm.conf").write_text('devices {\n  global_filter = [ "a|^/dev/sd|", "r|.*|" ]\n}\n')

    refused = lvmvol("pool", "init", device, "--vg", unique_name("vg"), check=False, env={"LVM_SYSTEM_DIR": str(system_dir)})

    assert refused.returncode == 4, refused.stderr
    assert "devices/global_filter" in refused.stderr
    assert "'r|.*|'" in refused.stderr
    assert pv_of(device) == []


def test_init_monitors_pool_and_reports_autoextend(loop_device, unique_name, lvmvol, tmp_path):
    device = loop_device("256M")
    vg = unique_name("vg")
    system_dir = tmp_path / "lvm"
    system_dir.mkdir()
    (system_dir / "lvm.conf").write_text(
        "activation {\n  thin_pool_autoextend_threshold = 70\n  thin_pool_autoextend_percent = 25\n}\n"
    )

    full = lvmvol("pool", "init", device, "--vg", vg, "--json")
    pools = [pool for pool in json_output(lvmvol("pool", "ls", "--json")) if pool["vg"] == vg]
    table = lvmvol("pool", "ls")
    tuned = [
        pool
        for pool in json_output(lvmvol("pool", "ls", "--json", env={"LVM_SYSTEM_DIR": str(system_dir)}))
        if pool["vg"] == vg
    ]

    monitor = lvm_json("lvs", "-o", "seg_monitor", f"{vg}/pool")[0]["seg_monitor"]
    print(f"dmeventd state of the new pool: {monitor!r}")
    assert (pools[0]["monitoring"] or "") == monitor
    assert monitor == "monitored" or "dmeventd cannot monitor" in full.stderr
    # lvm2 2.03.16's "lvmconfig --type full" fails for a key no file sets, so read the default.
    setting = run_command(["lvmconfig", "--type", "default", "activation/thin_pool_autoextend_threshold"]).stdout
    assert pools[0]["autoextend_threshold"] == int(setting.strip().partition("=")[2])
    assert isinstance(pools[0]["autoextend_percent"], int)
    assert tuned[0]["autoextend_threshold"] == 70
    assert tuned[0]["autoextend_percent"] == 25
    assert tuned[0]["autoextend_enabled"] is True
    # The pool took all free space, so it cannot grow.
    assert "cannot grow" in full.stderr
    assert "cannot grow" in pools[0]["growth_warning"]
    assert "by 25% at 70% full" in tuned[0]["growth_warning"]
    assert "cannot grow" in table.stderr
    assert monitor in table.stdout


def test_init_with_room_has_no_growth_warning(loop_device, unique_name, lvmvol):
    device = loop_device("512M")
    vg = unique_name("vg")

    result = lvmvol("pool", "init", device, "--vg", vg, "--size", "200M")

    assert "cannot grow" not in result.stderr
    pools = [pool for pool in json_output(lvmvol("pool", "ls", "--json")) if pool["vg"] == vg]
    assert pools[0]["growth_warning"] is None


def test_pool_rm_refuses_pool_with_volumes(thin_pool, lvmvol):
    lvmvol("volume", "create", "keep", "--size", "16M")

    refused = lvmvol("pool", "rm", thin_pool.spec, check=False)
    unconfirmed = lvmvol("pool", "rm", thin_pool.spec, "--force", check=False)

    assert refused.returncode == 4
    assert "keep" in refused.stderr
    assert "--force --yes" in refused.stderr
    assert unconfirmed.returncode == 4
    assert lv_row(thin_pool.vg, "keep") is not None
    assert lv_row(thin_pool.vg, "pool") is not None


def test_pool_rm_force_removes_volumes_vg_and_pv(thin_pool, lvmvol, lvmvol_config, tmp_path):
    key_dir = tmp_path / "keys"
    lvmvol_config["key_dir"] = str(key_dir)
    lvmvol("volume", "create", "plain", "--size", "16M")
    lvmvol("volume", "create", "secret", "--size", "48M", "--luks")
    mountpoint = lvmvol("volume", "mount", "secret").stdout.strip()
    lvmvol("snapshot", "plain", "plainsnap")
    assert len(os.listdir(key_dir)) == 1

    removed = json_output(lvmvol("pool", "rm", thin_pool.spec, "--force", "--yes", "--json"))
    again = json_output(lvmvol("pool", "rm", thin_pool.spec, "--json"))

    assert removed["changed"] is True
    assert sorted(removed["volumes_removed"]) == ["plain", "plainsnap", "secret"]
    assert removed["vg_removed"] is True
    assert again["changed"] is False
    assert lvm_json("vgs", "-o", "vg_name", "--select", f"vg_name={thin_pool.vg}") == []
    assert pv_of(thin_pool.device) == []
    assert os.listdir(key_dir) == []
    assert not os.path.exists(mountpoint)
    assert run_command(["dmsetup", "ls", "--target", "crypt"]).stdout.count(thin_pool.vg) == 0


def test_pool_rm_keeps_vg_lvmvol_did_not_create(loop_device, unique_name, lvmvol):
    device = loop_device("256M")
    vg = unique_name("vg")
    run_command(["vgcreate", vg, device])
    lvmvol("pool", "init", device, "--vg", vg, "--size", "64M")

    result = lvmvol("pool", "rm", f"{vg}/pool")

    assert lv_row(vg, "pool") is None
    assert lvm_json("vgs", "-o", "vg_name", vg) == [{"vg_name": vg}]
    assert "lvmvol did not create it" in result.stderr


def test_pool_rm_file_backed_detaches_and_deletes(unique_name, lvmvol, lvmvol_config, tmp_path):
    # A list of its own: the default one outlives the test, and a later activate would miss the deleted file.
    lvmvol_config["loop_file_list"] = str(tmp_path / "loop-files")
    vg = unique_name("vg")
    backing = os.path.join(os.environ["LVMVOL_VM_SCRATCH"], f"{vg}.img")
    try:
        loop = json_output(lvmvol("pool", "init", "--file", backing, "--file-size", "128M", "--vg", vg, "--json"))["loop_device"]

        removed = json_output(lvmvol("pool", "rm", f"{vg}/pool", "--json"))

        assert removed["files_removed"] == [backing]
        assert not os.path.exists(backing)
        assert run_command(["losetup", "-j", backing]).stdout.strip() == ""
        assert lvm_json("vgs", "-o", "vg_name", "--select", f"vg_name={vg}") == []
        assert pv_of(loop) == []
    finally:
        run_command(["vgremove", "-ff", vg], check=False)
        for line in run_command(["losetup", "-j", backing], check=False).stdout.splitlines():
            run_command(["losetup", "-d", line.split(":")[0]], check=False)
        if os.path.exists(backing):
            os.unlink(backing)
