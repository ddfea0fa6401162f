"""Checks that the VM provides what the lvmvol suite relies on.

These tests use the kernel, lvm2 and cryptsetup directly, not lvmvol, so a
failure here points at the VM or the harness and not at lvmvol.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
import tomllib
from pathlib import Path

import pytest

from .helpers import (
    attach_loop_device,
    find_stacked_devices,
    lvm_json,
    release_loop_device,
    run_command,
)

MiB = 2**20
GiB = 2**30

# A fast key derivation for test passphrases: argon2id, the LUKS2 default,
# takes seconds and up to 1 GiB of memory per format under emulation.
FAST_PBKDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]
PASSPHRASE = "vm-suite-passphrase"


def make_thin_volume(loop_path: str, vg: str, pool_size: str = "256M", volume_size: str = "1G") -> str:
    """Make VG ``vg`` on ``loop_path`` with thin pool ``pool`` and thin volume ``thin``; return its path."""
    run_command(["pvcreate", "--yes", loop_path])
    run_command(["vgcreate", "--yes", vg, loop_path])
    run_command(["lvcreate", "--yes", "--type", "thin-pool", "--size", pool_size, "--name", "pool", vg])
    run_command(["lvcreate", "--yes", "--virtualsize", volume_size, "--thinpool", "pool", "--name", "thin", vg])
    return f"/dev/{vg}/thin"


def wait_until_detached(path: str, timeout: float = 30) -> bool:
    """Return True once losetup no longer lists ``path``, False after ``timeout`` seconds.

    A detach while udev still has the device open only sets autoclear, and
    the kernel detaches it when udev closes it.
    """
    deadline = time.monotonic() + timeout
    while True:
        attached = run_command(["losetup", "--list", "--noheadings", "--output", "NAME"]).stdout.split()
        if path not in attached:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def rows_by_name(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["lv_name"]: row for row in rows}


def test_device_mapper_targets_loaded():
    output = run_command(["dmsetup", "targets"]).stdout
    targets = {line.split()[0] for line in output.splitlines() if line.strip()}

    assert "thin-pool" in targets, output
    assert "thin" in targets, output
    assert "crypt" in targets, output


def test_udevd_responds():
    # --ping fails unless systemd-udevd responds on its control socket.
    run_command(["udevadm", "control", "--ping"])


def test_pyudev_sees_loop_attach(loop_device):
    import pyudev  # an lvmvol dependency, which waits for device nodes with it

    context = pyudev.Context()
    monitor = pyudev.Monitor.from_netlink(context)
    monitor.filter_by("block")
    monitor.start()

    path = loop_device("64M")

    # The loop driver creates /dev/loop0-7 at load time, so attaching a file
    # to one of them sends a "change" event. A loop device created on demand
    # sends "add".
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        device = monitor.poll(timeout=deadline - time.monotonic())
        if device is None:
            break
        seen.append((device.action, device.device_node))
        if device.device_node == path and device.action in ("add", "change"):
            break
    assert (("add", path) in seen) or (("change", path) in seen), f"events seen: {seen}"

    device = pyudev.Devices.from_device_file(context, path)
    assert device.subsystem == "block"


def test_loop_device_is_usable(loop_device):
    path = loop_device()

    assert path.startswith("/dev/loop")
    assert stat.S_ISBLK(os.stat(path).st_mode)
    size = int(run_command(["blockdev", "--getsize64", path]).stdout)
    assert size == 512 * MiB

    pattern = os.urandom(4096)
    fd = os.open(path, os.O_RDWR)
    try:
        os.pwrite(fd, pattern, 100 * MiB)
        os.fsync(fd)
        assert os.pread(fd, len(pattern), 100 * MiB) == pattern
    finally:
        os.close(fd)


def test_loop_device_custom_size(loop_device):
    first = loop_device("64M")
    second = loop_device(300 * MiB)

    assert first != second
    assert int(run_command(["blockdev", "--getsize64", first]).stdout) == 64 * MiB
    assert int(run_command(["blockdev", "--getsize64", second]).stdout) == 300 * MiB


def test_thin_pool_and_thin_volume(loop_device, unique_name):
    vg = unique_name("t")
    node = make_thin_volume(loop_device(), vg)

    vgs = lvm_json("vgs", "-o", "vg_name,pv_count,lv_count", vg)
    assert vgs == [{"vg_name": vg, "pv_count": "1", "lv_count": "2"}]

    lvs = rows_by_name(lvm_json("lvs", "-o", "lv_name,segtype,lv_size,pool_lv,lv_attr", vg))
    assert set(lvs) == {"pool", "thin"}
    assert lvs["pool"]["segtype"] == "thin-pool"
    assert lvs["pool"]["lv_size"] == str(256 * MiB)
    assert lvs["thin"]["segtype"] == "thin"
    assert lvs["thin"]["lv_size"] == str(1 * GiB)
    assert lvs["thin"]["pool_lv"] == "pool"
    # lv_attr: V is a thin volume, the fifth character "a" means active.
    assert lvs["thin"]["lv_attr"][0] == "V"
    assert lvs["thin"]["lv_attr"][4] == "a"

    # lvcreate waits for udev, so the node exists when it returns.
    assert stat.S_ISBLK(os.stat(node).st_mode)
    size = int(run_command(["blockdev", "--getsize64", node]).stdout)
    assert size == 1 * GiB


def test_thin_snapshot_skips_activation(loop_device, unique_name):
    vg = unique_name("t")
    make_thin_volume(loop_device(), vg)

    run_command(["lvcreate", "--yes", "--snapshot", "--name", "snap", f"{vg}/thin"])
    snap = rows_by_name(lvm_json("lvs", "-o", "lv_name,origin,pool_lv,lv_attr", vg))["snap"]
    assert snap["origin"] == "thin"
    assert snap["pool_lv"] == "pool"
    # lvm2 sets the activation skip flag ("k", tenth character) on thin
    # snapshots and leaves them inactive. lvchange activates them only with -K.
    assert snap["lv_attr"][9] == "k"
    assert snap["lv_attr"][4] == "-"
    assert not os.path.exists(f"/dev/{vg}/snap")

    run_command(["lvchange", "--activate", "y", "--ignoreactivationskip", f"{vg}/snap"])
    snap = rows_by_name(lvm_json("lvs", "-o", "lv_name,lv_attr", vg))["snap"]
    assert snap["lv_attr"][4] == "a"
    assert os.path.exists(f"/dev/{vg}/snap")


@pytest.mark.parametrize("fstype", ["ext4", "xfs"])
def test_mkfs_and_mount_thin_volume(loop_device, unique_name, tmp_path, fstype):
    vg = unique_name("t")
    # mkfs.xfs in xfsprogs 6.x rejects filesystems below 300 MiB.
    node = make_thin_volume(loop_device(), vg, volume_size="512M")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()

    run_command([f"mkfs.{fstype}", "-q", node])
    run_command(["mount", node, str(mountpoint)])
    try:
        (mountpoint / "hello").write_text("hello\n")
        assert (mountpoint / "hello").read_text() == "hello\n"
        found = run_command(["findmnt", "--noheadings", "--output", "FSTYPE", str(mountpoint)])
        assert found.stdout.strip() == fstype
    finally:
        run_command(["umount", str(mountpoint)])


def test_luks2_on_thin_volume(loop_device, unique_name):
    vg = unique_name("t")
    node = make_thin_volume(loop_device(), vg)
    mapping = f"luks-{vg}"

    run_command(
        ["cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", *FAST_PBKDF, "--key-file", "-", node],
        input=PASSPHRASE,
    )
    run_command(["cryptsetup", "open", "--key-file", "-", node, mapping], input=PASSPHRASE)

    assert stat.S_ISBLK(os.stat(f"/dev/mapper/{mapping}").st_mode)
    table = run_command(["dmsetup", "table", mapping]).stdout.split()
    assert table[2] == "crypt", table
    run_command(["cryptsetup", "isLuks", "--type", "luks2", node])
    # The loop fixture removes this mapping at teardown.


@pytest.mark.parametrize(
    "argv",
    [
        ["mkfs.ext4", "-V"],
        ["mkfs.xfs", "-V"],
        ["cryptsetup", "--version"],
        ["thin_check", "--version"],
        ["lvm", "version"],
        ["dmsetup", "version"],
    ],
    ids=lambda argv: argv[0],
)
def test_tool_runs(argv):
    assert shutil.which(argv[0]), f"{argv[0]} is not on PATH: {os.environ['PATH']}"
    run_command(argv)


def test_release_loop_device_removes_stack(vm_scratch, unique_name, tmp_path):
    # Calls the helpers directly rather than through the loop_device fixture,
    # so that this test can check the teardown's result.
    loop = attach_loop_device(vm_scratch, "512M")
    try:
        vg = unique_name("t")
        node = make_thin_volume(loop.path, vg, volume_size="256M")
        mapping = f"luks-{vg}"
        run_command(
            ["cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", *FAST_PBKDF, "--key-file", "-", node],
            input=PASSPHRASE,
        )
        run_command(["cryptsetup", "open", "--key-file", "-", node, mapping], input=PASSPHRASE)
        run_command(["mkfs.ext4", "-q", f"/dev/mapper/{mapping}"])
        mountpoint = tmp_path / "mnt"
        mountpoint.mkdir()
        run_command(["mount", f"/dev/mapper/{mapping}", str(mountpoint)])
        assert len(find_stacked_devices(loop.kernel_name)) >= 5  # tmeta, tdata, pool, thin, crypt
    finally:
        problems = release_loop_device(loop)

    assert problems == []
    assert str(mountpoint) not in Path("/proc/self/mounts").read_text()
    assert not os.path.exists(f"/dev/mapper/{mapping}")
    assert vg not in {row["vg_name"] for row in lvm_json("vgs", "-o", "vg_name")}
    assert wait_until_detached(loop.path)
    assert not loop.backing_file.exists()


def test_lvmvol_config_is_toml(lvmvol_config):
    assert lvmvol_config.path.read_text() == ""

    lvmvol_config["volume_group"] = "vg0"
    lvmvol_config.update({"pool": {"name": 'p"1', "max_overcommit": 2.5, "warn": True}})
    lvmvol_config.update({"pool": {"tags": ["a", "b c"]}})

    assert tomllib.loads(lvmvol_config.path.read_text()) == {
        "volume_group": "vg0",
        "pool": {"name": 'p"1', "max_overcommit": 2.5, "warn": True, "tags": ["a", "b c"]},
    }


def test_lvmvol_fixture_runs_cli(lvmvol):
    result = lvmvol("--help")
    assert result.returncode == 0
    assert "Usage:" in result.stdout

    failed = lvmvol("no-such-command", check=False)
    assert failed.returncode != 0

    with pytest.raises(AssertionError) as excinfo:
        lvmvol("no-such-command")
    message = str(excinfo.value)
    assert "no-such-command" in message
    assert f"exit code: {failed.returncode}" in message
