"""``lvmvol volume restore`` against real lvm2 thin merges, including kills at every step."""

from __future__ import annotations

import hashlib
import os
import signal
import tempfile

import pytest

from lvmvol.names import crypt_mapping_name, lv_device_path
from lvmvol.ops.restore import STEPS

from .helpers import lvm_json, run_command
from .lvmvol_fixtures import (  # noqa: F401
    all_lvs,
    json_output,
    lv_names,
    lv_row,
    mount_root,
    read_file,
    thin_pool,
    write_file,
)
from .test_encryption import make_key_file

# Steps that a restore without --keep-snapshot passes; copy and rename
# exist only when the snapshot is kept.
CONSUMING_STEPS = tuple(step for step in STEPS if step not in ("copy", "rename"))
# A kill before these steps leaves the origin with its old content.
BEFORE_MERGE = STEPS[: STEPS.index("merge") + 1]


def write_data(directory: str, seed: str) -> str:
    """Write 256 KiB derived from ``seed`` to ``directory/data``, fsync it, and return its SHA-256."""
    data = hashlib.sha256(seed.encode()).digest() * (256 * 1024 // 32)
    with open(os.path.join(directory, "data"), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return hashlib.sha256(data).hexdigest()


def data_checksum(directory: str) -> str:
    with open(os.path.join(directory, "data"), "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def lvmvol_tags(vg: str, name: str) -> list[str]:
    return sorted(tag for tag in lv_row(vg, name)["lv_tags"].split(",") if tag.startswith("lvmvol."))


def journal_tags(vg: str) -> list[str]:
    """Return every restore journal tag on any LV of ``vg``."""
    found = []
    for name in lv_names(vg):
        found += [tag for tag in lv_row(vg, name)["lv_tags"].split(",") if tag.startswith("lvmvol.restore")]
    return found


def identity(vg: str, name: str) -> tuple[str, str]:
    """Return the LV UUID and creation time of ``vg/name``."""
    row = lvm_json("lvs", "-o", "lv_uuid,lv_time", f"{vg}/{name}")[0]
    return row["lv_uuid"], row["lv_time"]


def checksum_behind_lvmvol(vg: str, name: str, key: str | None) -> str:
    """Return the checksum of the data file on ``vg/name``, read with lvm2, cryptsetup and mount directly.

    lvmvol refuses to mount a volume with an unfinished restore, so this
    mounts it read-only without lvmvol. The ext4 journal is replayed: lvm2
    does not freeze a filesystem on a dm-crypt mapping while it snapshots
    the LV below it, so an encrypted snapshot's journal can need recovery.
    """
    run_command(["lvchange", "--activate", "y", "--ignoreactivationskip", f"{vg}/{name}"])
    device = lv_device_path(vg, name)
    mapping = None
    if key is not None:
        mapping = f"inspect-{name}"
        run_command(["cryptsetup", "open", "--key-file", key, device, mapping])
        device = f"/dev/mapper/{mapping}"
    mountpoint = tempfile.mkdtemp(prefix="inspect-")
    try:
        run_command(["mount", "-t", "ext4", "-o", "ro", device, mountpoint])
        try:
            return data_checksum(mountpoint)
        finally:
            run_command(["umount", mountpoint])
    finally:
        os.rmdir(mountpoint)
        if mapping is not None:
            run_command(["cryptsetup", "close", mapping])


def make_volume_with_snapshot(lvmvol, name: str, key: str | None) -> tuple[str, str]:
    """Create ``name`` and snapshot ``name-s``; return the checksums in the snapshot and in the origin after it."""
    encryption = ["--luks", "--key-file", key] if key else []
    lvmvol("volume", "create", name, "--size", "48M", *encryption)
    mountpoint = lvmvol("volume", "mount", name).stdout.strip()
    in_snapshot = write_data(mountpoint, f"{name} snapshot")
    lvmvol("snapshot", name, f"{name}-s")
    after_snapshot = write_data(mountpoint, f"{name} later")
    lvmvol("volume", "umount", name)
    return in_snapshot, after_snapshot


def test_restore_gives_origin_snapshot_content(thin_pool, lvmvol):
    in_snapshot, after_snapshot = make_volume_with_snapshot(lvmvol, "db", None)
    assert in_snapshot != after_snapshot
    tags_before = lvmvol_tags(thin_pool.vg, "db")

    result = lvmvol("volume", "restore", "db-s", "--json")

    assert json_output(result)["name"] == "db"
    assert json_output(result)["changed"] is True
    assert json_output(result)["snapshot_kept"] is False
    assert lv_names(thin_pool.vg) == {"pool", "db"}
    assert lv_row(thin_pool.vg, "db")["lv_active"] == "active"
    assert lv_row(thin_pool.vg, "db")["origin"] == ""
    assert lvmvol_tags(thin_pool.vg, "db") == tags_before
    mountpoint = lvmvol("volume", "mount", "db").stdout.strip()
    assert data_checksum(mountpoint) == in_snapshot
    assert "rw" in run_command(["findmnt", "-n", "-o", "OPTIONS", mountpoint]).stdout.split(",")
    lvmvol("volume", "umount", "db")
    again = lvmvol("volume", "restore", "db-s", check=False)
    assert again.returncode == 3
    assert "db-s" in again.stderr


def test_restore_keep_snapshot(thin_pool, lvmvol, tmp_path):
    in_snapshot, _ = make_volume_with_snapshot(lvmvol, "web", None)
    snapshot_tags = lvmvol_tags(thin_pool.vg, "web-s")

    result = lvmvol("volume", "restore", "web-s", "--keep-snapshot")

    assert result.stdout == "web\n"
    assert lv_names(thin_pool.vg) == {"pool", "web", "web-s"}
    assert lv_row(thin_pool.vg, "web")["origin"] == ""
    assert lv_row(thin_pool.vg, "web-s")["origin"] == "web"
    assert lv_row(thin_pool.vg, "web-s")["lv_active"] == "active"
    assert lvmvol_tags(thin_pool.vg, "web-s") == snapshot_tags
    assert journal_tags(thin_pool.vg) == []
    origin = lvmvol("volume", "mount", "web").stdout.strip()
    write_data(origin, "changed again")
    kept = lvmvol("volume", "mount", "web-s", str(tmp_path / "kept")).stdout.strip()
    assert data_checksum(kept) == in_snapshot
    lvmvol("volume", "umount", "web-s")
    lvmvol("volume", "umount", "web")
    # The kept snapshot restores again.
    lvmvol("volume", "restore", "web-s", "--keep-snapshot")
    origin = lvmvol("volume", "mount", "web").stdout.strip()
    assert data_checksum(origin) == in_snapshot
    lvmvol("volume", "umount", "web")


def test_restore_refuses_volumes_in_use(thin_pool, lvmvol, tmp_path):
    make_volume_with_snapshot(lvmvol, "app", None)
    origin = lvmvol("volume", "mount", "app").stdout.strip()
    before = all_lvs()
    tags_before = lvmvol_tags(thin_pool.vg, "app")

    mounted_origin = lvmvol("volume", "restore", "app-s", check=False)

    assert mounted_origin.returncode == 4
    assert origin in mounted_origin.stderr
    lvmvol("volume", "umount", "app")
    snapshot = lvmvol("volume", "mount", "app-s", str(tmp_path / "snap")).stdout.strip()
    mounted_snapshot = lvmvol("volume", "restore", "app-s", check=False)
    assert mounted_snapshot.returncode == 4
    assert snapshot in mounted_snapshot.stderr
    lvmvol("volume", "umount", "app-s")
    with open(lv_device_path(thin_pool.vg, "app"), "rb"):
        held_open = lvmvol("volume", "restore", "app-s", check=False)
    assert held_open.returncode == 4
    assert "app" in held_open.stderr
    assert all_lvs() == before
    assert lvmvol_tags(thin_pool.vg, "app") == tags_before


def test_restore_other_snapshots_keep_old_content(thin_pool, lvmvol, tmp_path):
    first, second = make_volume_with_snapshot(lvmvol, "log", None)
    lvmvol("snapshot", "log", "log-second")

    result = lvmvol("volume", "restore", "log-s")

    assert "log-second" in result.stderr
    assert lv_row(thin_pool.vg, "log-second")["origin"] == ""
    shown = json_output(lvmvol("volume", "show", "log-second", "--json"))
    assert shown["origin"] is None
    other = lvmvol("volume", "mount", "log-second", str(tmp_path / "second")).stdout.strip()
    assert data_checksum(other) == second
    lvmvol("volume", "umount", "log-second")
    origin = lvmvol("volume", "mount", "log").stdout.strip()
    assert data_checksum(origin) == first
    lvmvol("volume", "umount", "log")


def test_restore_encrypted_opens_with_same_key(thin_pool, lvmvol, tmp_path):
    key = make_key_file(tmp_path)
    in_snapshot, _ = make_volume_with_snapshot(lvmvol, "vault", key)

    lvmvol("volume", "restore", "vault-s")

    row = lv_row(thin_pool.vg, "vault")
    assert "lvmvol.crypt=luks2" in row["lv_tags"].split(",")
    assert f"lvmvol.key={key}" in row["lv_tags"].split(",")
    mountpoint = lvmvol("volume", "mount", "vault").stdout.strip()
    assert data_checksum(mountpoint) == in_snapshot
    assert os.path.exists(f"/dev/mapper/{crypt_mapping_name(thin_pool.vg, 'vault')}")
    lvmvol("volume", "umount", "vault")


def killed_restore_finishes(thin_pool, lvmvol, name: str, step: str, keep: bool, key: str | None) -> None:
    """Kill a restore of ``name`` before ``step``, check the origin, run it again and check the result."""
    in_snapshot, after_snapshot = make_volume_with_snapshot(lvmvol, name, key)
    snapshot = f"{name}-s"
    origin_tags = lvmvol_tags(thin_pool.vg, name)
    origin_identity = identity(thin_pool.vg, name)
    snapshot_tags = lvmvol_tags(thin_pool.vg, snapshot)
    keep_option = ["--keep-snapshot"] if keep else []

    killed = lvmvol(
        "volume", "restore", snapshot, *keep_option, check=False, env={"LVMVOL_FAULT_BEFORE": f"restore:{step}"}
    )

    assert killed.returncode == -signal.SIGKILL, (step, killed.stderr)
    assert lv_row(thin_pool.vg, name) is not None, step
    expected = after_snapshot if step in BEFORE_MERGE else in_snapshot
    assert checksum_behind_lvmvol(thin_pool.vg, name, key) == expected, step
    if step != STEPS[0]:
        blocked = lvmvol("volume", "mount", name, check=False)
        assert blocked.returncode == 4, step
        assert "restore" in blocked.stderr

    finished = lvmvol("volume", "restore", snapshot, *keep_option)

    assert finished.stdout == f"{name}\n", step
    expected_lvs = {"pool", name, snapshot} if keep else {"pool", name}
    assert lv_names(thin_pool.vg) == expected_lvs, step
    assert journal_tags(thin_pool.vg) == [], step
    assert lvmvol_tags(thin_pool.vg, name) == origin_tags, step
    assert identity(thin_pool.vg, name) == origin_identity, step
    if keep:
        assert lvmvol_tags(thin_pool.vg, snapshot) == snapshot_tags, step
        assert lv_row(thin_pool.vg, snapshot)["origin"] == name, step
    mountpoint = lvmvol("volume", "mount", name).stdout.strip()
    assert data_checksum(mountpoint) == in_snapshot, step
    lvmvol("volume", "umount", name)
    lvmvol("volume", "rm", *([name, snapshot] if keep else [name]))


@pytest.mark.parametrize("keep", [True, False], ids=["keep", "consume"])
def test_restore_killed_at_each_step(thin_pool, lvmvol, keep):
    steps = STEPS if keep else CONSUMING_STEPS
    for number, step in enumerate(steps):
        killed_restore_finishes(thin_pool, lvmvol, f"k{number}", step, keep, None)


def test_restore_encrypted_killed_at_each_step(thin_pool, lvmvol, tmp_path):
    key = make_key_file(tmp_path)
    for number, step in enumerate(STEPS):
        killed_restore_finishes(thin_pool, lvmvol, f"e{number}", step, True, key)
