"""Fixtures that build lvmvol pools on loop devices; test modules import the ones they use."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import lvm_json, run_command


@dataclass
class ThinPool:
    vg: str
    name: str
    device: str

    @property
    def spec(self) -> str:
        return f"{self.vg}/{self.name}"


@pytest.fixture
def mount_root(tmp_path: Path) -> Path:
    root = tmp_path / "mnt"
    root.mkdir()
    return root


def make_thin_pool(loop_device, unique_name, lvmvol, lvmvol_config, mount_root, device_size: str, pool_size: str) -> ThinPool:
    """Create a thin pool of ``pool_size`` on a new loop device of ``device_size``, configured as the default pool."""
    device = loop_device(device_size)
    vg = unique_name("vg")
    lvmvol_config.update({"pool": f"{vg}/pool", "mount_root": str(mount_root)})
    lvmvol("pool", "init", device, "--vg", vg, "--name", "pool", "--size", pool_size)
    return ThinPool(vg=vg, name="pool", device=device)


@pytest.fixture
def thin_pool(loop_device, unique_name, lvmvol, lvmvol_config, mount_root) -> ThinPool:
    """A 400 MiB thin pool on a 512 MiB loop device, configured as the default pool."""
    return make_thin_pool(loop_device, unique_name, lvmvol, lvmvol_config, mount_root, "512M", "400M")


@pytest.fixture
def big_thin_pool(loop_device, unique_name, lvmvol, lvmvol_config, mount_root) -> ThinPool:
    """A 1.5 GiB thin pool, for XFS volumes (at least 300 MiB each) and snapshots of them."""
    return make_thin_pool(loop_device, unique_name, lvmvol, lvmvol_config, mount_root, "2G", "1536M")


def lv_row(vg: str, name: str) -> dict[str, str] | None:
    """Return the ``lvs`` row of ``vg/name`` with the fields tests check, or None."""
    rows = lvm_json(
        "lvs",
        "-o",
        "lv_name,vg_name,lv_attr,lv_size,pool_lv,origin,lv_tags,lv_active,lv_skip_activation,"
        "lv_dm_path,segtype",
        vg,
    )
    for row in rows:
        if row["lv_name"] == name:
            return row
    return None


def lv_names(vg: str) -> set[str]:
    return {row["lv_name"] for row in lvm_json("lvs", "-o", "lv_name", vg)}


def all_lvs() -> list[tuple[str, str, str]]:
    """Return (vg, lv, size) for every LV, to show that a command changed nothing."""
    rows = lvm_json("lvs", "-a", "-o", "vg_name,lv_name,lv_size")
    return sorted((row["vg_name"], row["lv_name"], row["lv_size"]) for row in rows)


def filesystem_type(device: str) -> str:
    """Return what blkid finds on ``device`` (``ext4``, ``xfs``), or "" when nothing."""
    result = run_command(["blkid", "--probe", "--output", "value", "--match-tag", "TYPE", device], check=False)
    return result.stdout.strip()


def mountpoints_of(device: str) -> list[str]:
    """Return the mountpoints of ``device`` in this mount namespace, from findmnt."""
    real = os.path.realpath(device)
    result = run_command(["findmnt", "--json", "--source", real], check=False)
    if result.returncode != 0 or not result.stdout.strip():
        return []
    return [entry["target"] for entry in json.loads(result.stdout)["filesystems"]]


def json_output(result) -> object:
    return json.loads(result.stdout)


def write_file(directory: str, name: str, text: str) -> None:
    """Write ``text`` to ``directory/name`` and fsync it, so a snapshot taken next contains it."""
    with open(os.path.join(directory, name), "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def read_file(directory: str, name: str) -> str:
    with open(os.path.join(directory, name)) as handle:
        return handle.read()
