"""Kill an operation before each of its named steps, then run the same command again.

The test-only fault hook (LVMVOL_FAULT_BEFORE=OPERATION:STEP) makes lvmvol
kill itself with SIGKILL right before the step, as a power cut or the OOM
killer would. The re-run must reach the finished state, with no leftover LV,
dm-crypt mapping, mount, loop device or key file, and no data lost. The
restore operation has its own kill tests in test_restore.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lvmvol.ops import encrypt, pools, removal, snapshots, volumes

from .helpers import lvm_json, run_command
from .lifecycle_fixtures import loop_devices_of
from .lvmvol_fixtures import lv_names, lv_row, mount_root, thin_pool  # noqa: F401

MiB = 1024 * 1024


def kill_before(lvmvol, step: str, *argv: str):
    """Run lvmvol ``argv`` with the fault hook set for ``step``; assert that it was killed there."""
    result = lvmvol(*argv, check=False, env={"LVMVOL_FAULT_BEFORE": step})
    assert result.returncode == -signal.SIGKILL, (step, result.returncode, result.stderr)
    return result


def crypt_mappings(vg: str) -> list[str]:
    output = run_command(["dmsetup", "ls", "--target", "crypt"]).stdout
    prefix = "luks-" + vg.replace("-", "--") + "-"
    return [line.split()[0] for line in output.splitlines() if line.startswith(prefix)]


def mounts_under(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as handle:
        return [line.split()[4] for line in handle if line.split()[4].startswith(str(root))]


def lvmvol_tags(vg: str, name: str) -> list[str]:
    return [tag for tag in lv_row(vg, name)["lv_tags"].split(",") if tag]


def key_files(key_dir: Path) -> list[str]:
    return sorted(os.listdir(key_dir)) if key_dir.exists() else []


@pytest.fixture
def key_dir(lvmvol_config, tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    lvmvol_config["key_dir"] = str(directory)
    return directory


def test_steps_named_in_order():
    """The tests below cover every step each operation names."""
    assert volumes.STEPS == ("key", "lvcreate", "format", "open", "mkfs", "close", "finish")
    assert snapshots.STEPS == ("freeze", "lvcreate", "activate")
    assert removal.STEPS == ("unmount", "close", "erase", "key", "lvremove")
    assert pools.STEPS == ("file", "attach", "wipe", "pvcreate", "vgcreate", "lvcreate", "monitor")
    assert encrypt.STEPS == ("mark", "grow", "reencrypt", "finish")


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "luks"])
def test_create_killed_at_each_step(thin_pool, lvmvol, key_dir, mount_root, encrypted):
    steps = volumes.STEPS if encrypted else ("lvcreate", "mkfs", "finish")
    luks = ["--luks"] if encrypted else []
    for number, step in enumerate(steps):
        name = f"c{number}"

        kill_before(lvmvol, f"create:{step}", "volume", "create", name, "--size", "32M", *luks)
        finished = lvmvol("volume", "create", name, "--size", "32M", *luks)

        assert finished.stdout == f"{name}\n", step
        tags = lvmvol_tags(thin_pool.vg, name)
        assert "lvmvol.incomplete" not in tags, step
        assert crypt_mappings(thin_pool.vg) == [], step
        if encrypted:
            assert key_files(key_dir) == [f"luks-{thin_pool.vg}-{name}.key"], step
        mountpoint = lvmvol("volume", "mount", name).stdout.strip()
        with open(os.path.join(mountpoint, "proof"), "w") as handle:
            handle.write(step)
        lvmvol("volume", "umount", name)
        lvmvol("volume", "rm", name)
        assert key_files(key_dir) == [], step
    assert lv_names(thin_pool.vg) == {"pool"}


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "luks"])
def test_snapshot_killed_at_each_step(thin_pool, lvmvol, tmp_path, mount_root, encrypted):
    """Kill a snapshot of a mounted origin; the origin stays writable, and a re-run finishes."""
    key = tmp_path / "origin.key"
    key.write_bytes(os.urandom(64))
    key.chmod(0o600)
    luks = ["--luks", "--key-file", str(key)] if encrypted else []
    lvmvol("volume", "create", "origin", "--size", "48M", *luks)
    mountpoint = lvmvol("volume", "mount", "origin").stdout.strip()
    # "activate" runs only when lvm2 leaves a new snapshot inactive, which
    # lvmvol's --setactivationskip n prevents; test_snapshot.py covers it.
    for step in ("freeze", "lvcreate"):
        name = f"origin-{step}"
        with open(os.path.join(mountpoint, "data"), "w") as handle:
            handle.write(step)

        kill_before(lvmvol, f"snapshot:{step}", "snapshot", "origin", name)

        # A frozen filesystem blocks writers; the thaw guard must have thawed it.
        writer = subprocess.run(
            [sys.executable, "-c", f"open({os.path.join(mountpoint, 'after')!r}, 'w').write('x')"],
            timeout=60,
            check=False,
        )
        assert writer.returncode == 0, step
        finished = lvmvol("snapshot", "origin", name)
        assert finished.stdout == f"{name}\n", step
        assert lv_row(thin_pool.vg, name)["lv_active"] == "active", step
        target = lvmvol("volume", "mount", name).stdout.strip()
        assert open(os.path.join(target, "data")).read() == step
        lvmvol("volume", "umount", name)
    lvmvol("volume", "umount", "origin")
    assert crypt_mappings(thin_pool.vg) == []


def test_encrypt_killed_at_each_step(thin_pool, lvmvol, key_dir, mount_root):
    for number, step in enumerate(encrypt.STEPS):
        name = f"e{number}"
        lvmvol("volume", "create", name, "--size", "32M")
        mountpoint = lvmvol("volume", "mount", name).stdout.strip()
        content = os.urandom(4 * MiB)
        with open(os.path.join(mountpoint, "data"), "wb") as handle:
            handle.write(content)
        lvmvol("volume", "umount", name)

        kill_before(lvmvol, f"encrypt:{step}", "volume", "encrypt", name)
        lvmvol("volume", "encrypt", name)

        tags = lvmvol_tags(thin_pool.vg, name)
        assert "lvmvol.crypt=luks2" in tags, step
        assert not any(tag.startswith(("lvmvol.encrypting", "lvmvol.encrypthead")) for tag in tags), step
        assert key_files(key_dir) == [f"luks-{thin_pool.vg}-{name}.key"], step
        mountpoint = lvmvol("volume", "mount", name).stdout.strip()
        with open(os.path.join(mountpoint, "data"), "rb") as handle:
            assert handle.read() == content, step
        lvmvol("volume", "umount", name)
        lvmvol("volume", "rm", name)
        assert crypt_mappings(thin_pool.vg) == [], step
        assert key_files(key_dir) == [], step


def test_rm_killed_at_each_step(thin_pool, lvmvol, key_dir, mount_root):
    for number, step in enumerate(removal.STEPS):
        name = f"r{number}"
        lvmvol("volume", "create", name, "--size", "32M", "--luks")
        lvmvol("volume", "mount", name)
        assert len(key_files(key_dir)) == 1

        kill_before(lvmvol, f"rm:{step}", "volume", "rm", name, "--force", "--yes")
        lvmvol("volume", "rm", name, "--force", "--yes")

        assert name not in lv_names(thin_pool.vg), step
        assert crypt_mappings(thin_pool.vg) == [], step
        assert mounts_under(mount_root) == [], step
        assert key_files(key_dir) == [], step


def test_pool_init_file_killed_at_each_step(unique_name, lvmvol, lvmvol_config, vm_scratch, tmp_path):
    lvmvol_config["loop_file_list"] = str(tmp_path / "loop-files")
    for step in ("file", "attach", "pvcreate", "vgcreate", "lvcreate", "monitor"):
        vg = unique_name("vk")
        backing = str(vm_scratch / f"{vg}.img")
        argv = ["pool", "init", "--file", backing, "--file-size", "128M", "--vg", vg, "--name", "fp"]
        try:
            kill_before(lvmvol, f"pool-init:{step}", *argv)
            lvmvol(*argv)

            assert lv_row(vg, "fp")["segtype"] == "thin-pool", step
            assert len(loop_devices_of(backing)) == 1, step
            pv_names = [row["pv_name"] for row in lvm_json("pvs", "-o", "pv_name,vg_name") if row["vg_name"] == vg]
            assert pv_names == loop_devices_of(backing), step
            again = lvmvol(*argv, "--json")
            assert '"changed": false' in again.stdout, step
        finally:
            run_command(["vgremove", "-ff", vg], check=False)
            for loop in loop_devices_of(backing) if os.path.exists(backing) else []:
                run_command(["pvremove", "-ff", "-y", loop], check=False)
                run_command(["losetup", "-d", loop], check=False)
            if os.path.exists(backing):
                os.unlink(backing)
