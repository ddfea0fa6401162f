"""``volume create --mount``: one command that creates and mounts, unlocking an encrypted volume once."""

from __future__ import annotations

import os
import re

from lvmvol.names import crypt_mapping_name

from .lvmvol_fixtures import (  # noqa: F401
    json_output,
    lv_row,
    mount_root,
    mountpoints_of,
    read_file,
    thin_pool,
    write_file,
)


def runs_of(stderr: str, command: str) -> int:
    """Count the runs of ``command`` in the --verbose log of one lvmvol call."""
    return len(re.findall(rf"^lvmvol: run: {command}( |$)", stderr, re.MULTILINE))


def test_create_mount_unlocks_once(thin_pool, lvmvol, mount_root):
    mapping_device = f"/dev/mapper/{crypt_mapping_name(thin_pool.vg, 'cmluks')}"

    result = lvmvol("--verbose", "volume", "create", "cmluks", "--size", "48M", "--luks", "--mount", "--json")

    target = str(mount_root / "cmluks")
    assert json_output(result)["mountpoint"] == target
    assert mountpoints_of(mapping_device) == [target]
    assert runs_of(result.stderr, "cryptsetup open") == 1
    assert runs_of(result.stderr, "cryptsetup close") == 0
    assert "lvmvol.incomplete" not in lv_row(thin_pool.vg, "cmluks")["lv_tags"]
    write_file(target, "data.txt", "kept")

    again = lvmvol("volume", "create", "cmluks", "--size", "48M", "--luks", "--mount", "--json")

    assert json_output(again)["changed"] is False
    assert read_file(target, "data.txt") == "kept"
    lvmvol("volume", "umount", "cmluks")
    assert not os.path.exists(mapping_device)


def test_create_mountpoint_plain(thin_pool, lvmvol, tmp_path):
    target = str(tmp_path / "srv" / "web")

    result = lvmvol("volume", "create", "cmweb", "--size", "48M", "--mountpoint", target)

    assert result.stdout.strip() == "cmweb"
    assert mountpoints_of(f"/dev/{thin_pool.vg}/cmweb") == [target]


def test_create_bad_mountpoint_changes_nothing(thin_pool, lvmvol, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("data")

    not_empty = lvmvol("volume", "create", "cmbad", "--size", "48M", "--mountpoint", str(busy), check=False)
    relative = lvmvol("volume", "create", "cmbad", "--size", "48M", "--mountpoint", "srv/web", check=False)
    no_fs = lvmvol("volume", "create", "cmbad", "--size", "48M", "--fs", "none", "--mount", check=False)
    (tmp_path / "devlink").symlink_to("/dev")
    under_dev = lvmvol(
        "volume", "create", "cmbad", "--size", "48M", "--mountpoint", str(tmp_path / "devlink" / "cmbad"), check=False
    )
    empty = lvmvol("volume", "create", "cmbad", "--size", "48M", "--mountpoint", "", check=False)

    assert not_empty.returncode == 4, not_empty.stderr
    assert "not empty" in not_empty.stderr
    assert relative.returncode == 2, relative.stderr
    assert "relative path" in relative.stderr
    assert no_fs.returncode == 2, no_fs.stderr
    assert under_dev.returncode == 2, under_dev.stderr
    assert "under /dev" in under_dev.stderr
    assert not os.path.exists("/dev/cmbad")
    assert empty.returncode == 2, empty.stderr
    assert lv_row(thin_pool.vg, "cmbad") is None


def test_create_mount_failure_keeps_volume(thin_pool, lvmvol, lvmvol_config, mount_root):
    """A mount that the kernel rejects leaves the volume created and its mapping closed, and a re-run mounts it."""
    lvmvol_config["mount_options"] = "nodev,nosuid,no_such_option"
    mapping_device = f"/dev/mapper/{crypt_mapping_name(thin_pool.vg, 'cmfail')}"

    failed = lvmvol("volume", "create", "cmfail", "--size", "48M", "--luks", "--mount", check=False)

    assert failed.returncode == 5, failed.stderr
    assert "mount" in failed.stderr
    assert f"volume {thin_pool.vg}/cmfail is kept, not mounted" in failed.stderr
    row = lv_row(thin_pool.vg, "cmfail")
    assert row is not None
    assert "lvmvol.incomplete" not in row["lv_tags"]
    assert not os.path.exists(mapping_device)
    assert mountpoints_of(mapping_device) == []
    assert not os.path.exists(mount_root / "cmfail")

    lvmvol_config["mount_options"] = "nodev,nosuid"
    again = lvmvol("volume", "create", "cmfail", "--size", "48M", "--luks", "--mount", "--json")

    assert json_output(again)["changed"] is True
    assert mountpoints_of(mapping_device) == [str(mount_root / "cmfail")]


def test_create_mount_dry_run(thin_pool, lvmvol, mount_root):
    result = lvmvol("--dry-run", "volume", "create", "cmdry", "--size", "48M", "--luks", "--mount")

    assert "would then be mounted at" in result.stderr
    assert lv_row(thin_pool.vg, "cmdry") is None
    assert not os.path.exists(mount_root / "cmdry")
