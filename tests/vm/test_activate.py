"""A simulated reboot: everything taken down the way a shutdown does, then 'lvmvol activate'.

The VM suite boots once, so these tests do not cover a second boot over
the same disk images, where lvm2's own boot activation runs first.
"""

from __future__ import annotations

import os

from lvmvol.names import crypt_mapping_name

from .helpers import lvm_json, run_command
from .lifecycle_fixtures import file_pool, loop_devices_of  # noqa: F401
from .lvmvol_fixtures import (  # noqa: F401
    json_output,
    lv_row,
    mount_root,
    mountpoints_of,
    read_file,
    thin_pool,
    write_file,
)


def take_down(vgs: list[str], backing: str | None = None) -> None:
    """Do what a shutdown does: unmount, close dm-crypt mappings, deactivate the VGs, detach the loop file."""
    run_command(["udevadm", "settle"])
    for vg in vgs:
        for row in lvm_json("lvs", "-o", "lv_name,lv_dm_path,lv_active", vg):
            if row["lv_active"] != "active" or not row["lv_dm_path"]:
                continue
            mapping = f"/dev/mapper/{crypt_mapping_name(vg, row['lv_name'])}"
            for device in (mapping, row["lv_dm_path"]):
                for mountpoint in mountpoints_of(device):
                    run_command(["umount", mountpoint])
            if os.path.exists(mapping):
                run_command(["cryptsetup", "close", os.path.basename(mapping)])
    run_command(["vgchange", "--activate", "n", *vgs])
    for loop in loop_devices_of(backing) if backing else []:
        run_command(["losetup", "--detach", loop])


def items_by_name(report: dict) -> dict[str, dict]:
    return {item["name"]: item for item in report["items"]}


def mapping_open(vg: str, name: str) -> bool:
    return os.path.exists(f"/dev/mapper/{crypt_mapping_name(vg, name)}")


def test_activate_after_simulated_reboot(loop_device, unique_name, lvmvol, lvmvol_config, file_pool, mount_root, tmp_path):
    disk_vg = unique_name("vd")
    lvmvol_config.update({"mount_root": str(mount_root), "key_dir": str(tmp_path / "keys")})
    # Generated key files: their PBKDF2 key slots open in a moment, where
    # argon2id takes seconds under emulation.
    lvmvol("pool", "init", loop_device("512M"), "--vg", disk_vg, "--name", "pool", "--size", "300M")
    loop_pool = file_pool("256M")
    disk_pool = f"{disk_vg}/pool"
    key_dir = tmp_path / "keys"
    custom = str(tmp_path / "custom dir")

    lvmvol("volume", "create", "plain", "--size", "32M", "--pool", disk_pool)
    lvmvol("volume", "create", "secret", "--size", "48M", "--pool", disk_pool, "--luks")
    lvmvol("volume", "create", "closed", "--size", "48M", "--pool", disk_pool, "--luks")
    lvmvol("volume", "create", "onfile", "--size", "32M", "--pool", loop_pool.spec)
    lvmvol("volume", "create", "lost", "--size", "48M", "--pool", loop_pool.spec, "--luks")
    lost_key = str(key_dir / f"{crypt_mapping_name(loop_pool.vg, 'lost')}.key")
    assert os.path.exists(lost_key)
    persistent = {
        "plain": str(mount_root / "plain"),
        "secret": str(mount_root / "secret"),
        "onfile": custom,
        "lost": str(mount_root / "lost"),
    }
    for name, mountpoint in persistent.items():
        mounted = json_output(lvmvol("volume", "mount", name, mountpoint, "--persist", "--json"))
        assert mounted["persistent"] is True
        write_file(mountpoint, "data.txt", f"data of {name}")
    write_file(lvmvol("volume", "mount", "closed").stdout.strip(), "data.txt", "data of closed")
    lvmvol("volume", "umount", "closed")
    vg_of = {name: disk_vg for name in ("plain", "secret", "closed")}
    vg_of.update(onfile=loop_pool.vg, lost=loop_pool.vg)

    # The boot mountpoint is an LV tag, encoded like every tag value.
    assert "lvmvol.mountpoint=" + custom.replace(" ", ":20") in lv_row(loop_pool.vg, "onfile")["lv_tags"].split(",")
    # A snapshot does not inherit it: it would mount over its origin at boot.
    lvmvol("snapshot", "plain", "plain-snap")
    assert "lvmvol.mountpoint" not in lv_row(disk_vg, "plain-snap")["lv_tags"]

    take_down([disk_vg, loop_pool.vg], loop_pool.backing)
    assert loop_devices_of(loop_pool.backing) == []
    assert lv_row(disk_vg, "plain")["lv_active"] == ""

    first = lvmvol("activate", "--json")

    report = json_output(first)
    assert first.returncode == 0, first.stderr
    assert report["ok"] is True
    assert report["changed"] is True
    assert len(loop_devices_of(loop_pool.backing)) == 1
    items = items_by_name(report)
    assert items[loop_pool.backing]["changed"] is True
    assert items[f"{disk_vg}/plain"]["detail"] == persistent["plain"]
    for name, mountpoint in persistent.items():
        vg = vg_of[name]
        row = lv_row(vg, name)
        assert row["lv_active"] == "active", name
        device = f"/dev/mapper/{crypt_mapping_name(vg, name)}" if name in ("secret", "lost") else row["lv_dm_path"]
        assert mountpoints_of(device) == [mountpoint], name
        assert read_file(mountpoint, "data.txt") == f"data of {name}"
    for name in ("closed", "plain-snap"):
        row = lv_row(disk_vg, name)
        assert row["lv_active"] == "active", name
        assert mountpoints_of(row["lv_dm_path"]) == [], name
    assert not mapping_open(disk_vg, "closed")

    mounts_before = open("/proc/self/mountinfo").read()
    second = lvmvol("activate", "--json")

    assert json_output(second)["changed"] is False
    assert json_output(second)["ok"] is True
    assert open("/proc/self/mountinfo").read() == mounts_before
    assert len(loop_devices_of(loop_pool.backing)) == 1

    # A key file that is gone at boot: that volume is reported, the rest come up.
    take_down([disk_vg, loop_pool.vg], loop_pool.backing)
    os.rename(lost_key, lost_key + ".away")

    partial = lvmvol("activate", "--json", check=False)

    assert partial.returncode == 8
    items = items_by_name(json_output(partial))
    assert items[f"{loop_pool.vg}/lost"]["ok"] is False
    assert lost_key in items[f"{loop_pool.vg}/lost"]["error"]
    assert f"{loop_pool.vg}/lost" in partial.stderr
    assert not mapping_open(loop_pool.vg, "lost")
    assert read_file(persistent["onfile"], "data.txt") == "data of onfile"
    assert read_file(persistent["secret"], "data.txt") == "data of secret"
    assert read_file(persistent["plain"], "data.txt") == "data of plain"

    os.rename(lost_key + ".away", lost_key)
    recovered = json_output(lvmvol("activate", "--json"))

    assert recovered["ok"] is True
    assert items_by_name(recovered)[f"{loop_pool.vg}/lost"]["changed"] is True
    assert read_file(persistent["lost"], "data.txt") == "data of lost"

    # umount --persist ends the boot mount; a plain umount keeps it and prints a note.
    kept = lvmvol("volume", "umount", "secret")
    assert "still mounted at" in kept.stderr
    lvmvol("volume", "umount", "plain", "--persist")
    assert "lvmvol.mountpoint" not in lv_row(disk_vg, "plain")["lv_tags"]
    lvmvol("activate")
    assert mountpoints_of(lv_row(disk_vg, "plain")["lv_dm_path"]) == []
    assert read_file(persistent["secret"], "data.txt") == "data of secret"


def failing_thin_check_config(directory) -> str:
    """Return an LVM_SYSTEM_DIR whose lvm.conf runs /bin/false as thin_check, so no thin pool activates.

    The VM has no /etc/lvm/lvm.conf, so lvm2 runs on its built-in defaults
    and this file changes only thin_check.
    """
    assert not os.path.exists("/etc/lvm/lvm.conf")
    directory.mkdir()
    (directory / "lvm.conf").write_text('global {\n\tthin_check_executable = "/bin/false"\n}\n')
    return str(directory)


def test_activate_reports_pool_that_fails(thin_pool, lvmvol, mount_root, tmp_path):
    lvmvol("volume", "create", "held", "--size", "32M")
    lvmvol("volume", "mount", "held", "--persist")
    take_down([thin_pool.vg])
    lvm_dir = failing_thin_check_config(tmp_path / "lvm")

    result = lvmvol("activate", "--json", check=False, env={"LVM_SYSTEM_DIR": lvm_dir})

    assert result.returncode == 8
    items = items_by_name(json_output(result))
    pool_error = items[thin_pool.spec]["error"]
    # lvm2's own reason, from its stderr.
    assert "Check of pool" in pool_error
    assert items[f"{thin_pool.vg}/held"]["ok"] is False
    assert "is not active" in items[f"{thin_pool.vg}/held"]["error"]
    assert lv_row(thin_pool.vg, "pool")["lv_active"] == ""
    assert f"pool {thin_pool.spec}: " in result.stderr

    fixed = lvmvol("activate", "--json")
    assert json_output(fixed)["ok"] is True
    assert mountpoints_of(lv_row(thin_pool.vg, "held")["lv_dm_path"]) == [str(mount_root / "held")]


def mount_options_of(mountpoint: str) -> list[str]:
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            if fields[4] == mountpoint:
                return fields[5].split(",")
    raise AssertionError(f"{mountpoint} is not mounted")


def test_activate_mounts_with_recorded_options(thin_pool, lvmvol, mount_root):
    lvmvol("volume", "create", "opts", "--size", "32M")
    target = lvmvol("volume", "mount", "opts", "--persist", "--read-only", "--options", "noatime").stdout.strip()
    tags = lv_row(thin_pool.vg, "opts")["lv_tags"].split(",")
    assert "lvmvol.mountopts=ro:2cnoatime" in tags
    take_down([thin_pool.vg])

    lvmvol("activate")

    options = mount_options_of(target)
    assert "ro" in options
    assert "noatime" in options
    lvmvol("volume", "umount", "opts", "--persist")
    assert not any(tag.startswith("lvmvol.mount") for tag in lv_row(thin_pool.vg, "opts")["lv_tags"].split(","))
