"""``volume mount`` options and mountpoint checks, and ``volume umount`` of a busy filesystem, on ext4 and XFS."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys

import pytest

from lvmvol.names import crypt_mapping_name

from .helpers import run_command
from .lvmvol_fixtures import (  # noqa: F401
    big_thin_pool,
    json_output,
    lv_row,
    mount_root,
    mountpoints_of,
    read_file,
    thin_pool,
    write_file,
)
from .test_encryption import make_key_file

# XFS needs 300 MiB; ext4 volumes stay small in the same pool.
SIZES = {"ext4": "48M", "xfs": "300M"}


def mount_options(mountpoint: str) -> list[str]:
    """Return the per-mount and filesystem options of ``mountpoint`` from findmnt."""
    result = run_command(["findmnt", "--json", "--mountpoint", mountpoint, "-o", "OPTIONS"])
    return json.loads(result.stdout)["filesystems"][0]["options"].split(",")


def is_mounted(mountpoint: str) -> bool:
    return run_command(["findmnt", "--mountpoint", mountpoint], check=False).returncode == 0


def write_fails_read_only(directory: str) -> bool:
    try:
        write_file(directory, "probe", "x")
    except OSError as error:
        return error.errno == errno.EROFS
    return False


@pytest.mark.parametrize("filesystem", ["ext4", "xfs"])
def test_mount_default_options_and_mode(big_thin_pool, lvmvol, tmp_path, filesystem):
    lvmvol("volume", "create", "opts", "--size", SIZES[filesystem], "--fs", filesystem)
    target = str(tmp_path / "new" / "mp")

    result = lvmvol("volume", "mount", "opts", target, "--json")

    assert json_output(result)["mountpoint"] == target
    options = mount_options(target)
    assert {"rw", "nodev", "nosuid"} <= set(options)
    if filesystem == "xfs":
        assert "nouuid" in json_output(result)["options"]
    again = lvmvol("volume", "mount", "opts", target, "--json")
    assert json_output(again)["changed"] is False
    lvmvol("volume", "umount", "opts")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700


def test_mount_options_merge_with_config(thin_pool, lvmvol, lvmvol_config, tmp_path):
    lvmvol_config["mount_options"] = "nodev,nosuid,noexec"
    lvmvol("volume", "create", "merge", "--size", "32M")

    target = lvmvol("volume", "mount", "merge", "--options", "dev,noatime").stdout.strip()

    options = mount_options(target)
    assert "noexec" in options
    assert "nosuid" in options
    assert "nodev" not in options
    assert "noatime" in options
    lvmvol("volume", "umount", "merge")
    lvmvol_config["mount_options"] = "nodev, nosuid"
    bad_config = lvmvol("volume", "ls", check=False)
    assert bad_config.returncode == 2
    assert "mount_options" in bad_config.stderr
    lvmvol_config["mount_options"] = ""
    rejected = lvmvol("volume", "mount", "merge", "--options", "bind", check=False)
    assert rejected.returncode == 2
    assert "bind" in rejected.stderr


def test_mount_rejects_unsuitable_mountpoints(thin_pool, lvmvol, tmp_path):
    lvmvol("volume", "create", "place", "--size", "32M")
    full = tmp_path / "full"
    full.mkdir()
    (full / "file").write_text("keep me")
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    busy = tmp_path / "busy"
    busy.mkdir()
    run_command(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(busy)])

    try:
        non_empty = lvmvol("volume", "mount", "place", str(full), check=False)
        symlink = lvmvol("volume", "mount", "place", str(link), check=False)
        occupied = lvmvol("volume", "mount", "place", str(busy), check=False)
    finally:
        run_command(["umount", str(busy)])

    assert non_empty.returncode == 4
    assert str(full) in non_empty.stderr
    assert "not empty" in non_empty.stderr
    assert symlink.returncode == 2
    assert "symbolic link" in symlink.stderr
    assert occupied.returncode == 4
    assert "already a mountpoint" in occupied.stderr
    assert mountpoints_of(lv_row(thin_pool.vg, "place")["lv_dm_path"]) == []
    assert (full / "file").read_text() == "keep me"


@pytest.mark.parametrize("filesystem", ["ext4", "xfs"])
def test_snapshot_mounts_read_only_by_default(big_thin_pool, lvmvol, tmp_path, filesystem):
    lvmvol("volume", "create", "base", "--size", SIZES[filesystem], "--fs", filesystem)
    origin = lvmvol("volume", "mount", "base").stdout.strip()
    write_file(origin, "row", "1")
    lvmvol("snapshot", "base", "base-s")

    snapshot = lvmvol("volume", "mount", "base-s", str(tmp_path / "s")).stdout.strip()

    assert "ro" in mount_options(snapshot)
    assert write_fails_read_only(snapshot)
    assert read_file(snapshot, "row") == "1"
    conflict = lvmvol("volume", "mount", "base-s", str(tmp_path / "s"), "--read-write", check=False)
    assert conflict.returncode == 4
    lvmvol("volume", "umount", "base-s")
    writable = lvmvol("volume", "mount", "base-s", str(tmp_path / "s"), "--read-write").stdout.strip()
    assert "rw" in mount_options(writable)
    write_file(writable, "row", "2")
    lvmvol("volume", "umount", "base-s")
    lvmvol("volume", "umount", "base")
    read_only_origin = lvmvol("volume", "mount", "base", "--read-only").stdout.strip()
    assert write_fails_read_only(read_only_origin)
    assert read_file(read_only_origin, "row") == "1"
    lvmvol("volume", "umount", "base")


def test_xfs_origin_and_two_snapshots_mounted_at_once(big_thin_pool, lvmvol, tmp_path):
    lvmvol("volume", "create", "xdata", "--size", "300M", "--fs", "xfs")
    origin = lvmvol("volume", "mount", "xdata").stdout.strip()
    write_file(origin, "row", "first")
    lvmvol("snapshot", "xdata", "xdata-a")
    write_file(origin, "row", "second")
    lvmvol("snapshot", "xdata", "xdata-b")

    first = lvmvol("volume", "mount", "xdata-a", str(tmp_path / "a")).stdout.strip()
    second = lvmvol("volume", "mount", "xdata-b", str(tmp_path / "b")).stdout.strip()

    for mountpoint in (first, second):
        options = mount_options(mountpoint)
        assert "ro" in options
        assert "nouuid" in options
        assert "norecovery" in options
    assert read_file(first, "row") == "first"
    assert read_file(second, "row") == "second"
    write_file(origin, "row", "third")
    assert read_file(origin, "row") == "third"
    for name in ("xdata-a", "xdata-b", "xdata"):
        lvmvol("volume", "umount", name)


def hold_filesystem(directory: str) -> subprocess.Popen:
    """Start a process whose working directory is ``directory`` and that keeps a file there open."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; f = open('held', 'w'); sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(600)"],
        cwd=directory,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline() == "ready\n"
    return holder


@pytest.mark.parametrize("filesystem", ["ext4", "xfs"])
def test_umount_busy_names_processes(big_thin_pool, lvmvol, filesystem):
    lvmvol("volume", "create", "busy", "--size", SIZES[filesystem], "--fs", filesystem)
    target = lvmvol("volume", "mount", "busy").stdout.strip()
    holder = hold_filesystem(target)
    try:
        refused = lvmvol("volume", "umount", "busy", check=False)

        assert refused.returncode == 4
        assert f"process {holder.pid} (" in refused.stderr
        assert "working directory" in refused.stderr
        assert "open file" in refused.stderr
        assert is_mounted(target)

        lazy = lvmvol("volume", "umount", "busy", "--lazy")
        assert not is_mounted(target)
        assert str(holder.pid) in lazy.stderr
    finally:
        holder.kill()
        holder.wait()


def test_umount_lazy_encrypted_keeps_mapping_until_free(thin_pool, lvmvol, tmp_path):
    key = make_key_file(tmp_path)
    lvmvol("volume", "create", "lazy", "--size", "48M", "--luks", "--key-file", key)
    target = lvmvol("volume", "mount", "lazy").stdout.strip()
    mapping = f"/dev/mapper/{crypt_mapping_name(thin_pool.vg, 'lazy')}"
    holder = hold_filesystem(target)
    try:
        lazy = lvmvol("volume", "umount", "lazy", "--lazy", "--json")
        assert not is_mounted(target)
        assert json_output(lazy)["mapping_closed"] is False
        assert os.path.exists(mapping)
    finally:
        holder.kill()
        holder.wait()

    closed = lvmvol("volume", "umount", "lazy", "--json")

    assert json_output(closed)["mapping_closed"] is True
    assert not os.path.exists(mapping)
