"""Fixtures and helpers for the boot and growth tests: pools on loop-attached files, and layer sizes."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import LoopDevice, lvm_json, release_loop_device, run_command


@dataclass
class FilePool:
    vg: str
    name: str
    backing: str

    @property
    def spec(self) -> str:
        return f"{self.vg}/{self.name}"


def loop_devices_of(backing: str) -> list[str]:
    """Return the loop devices attached to ``backing``, from losetup."""
    output = run_command(["losetup", "--noheadings", "--output", "NAME", "--associated", backing]).stdout
    return [line.strip() for line in output.splitlines() if line.strip()]


@pytest.fixture
def file_pool(unique_name, lvmvol, lvmvol_config, vm_scratch: Path, tmp_path: Path):
    """Return a factory ``file_pool(file_size="256M") -> FilePool``: a pool on a loop-attached sparse file.

    The loop file list is the test's own file. Teardown removes everything on
    whichever loop device the file is attached to by then, and the file.
    """
    lvmvol_config["loop_file_list"] = str(tmp_path / "loop-files")
    created: list[FilePool] = []

    def make(file_size: str = "256M") -> FilePool:
        vg = unique_name("vf")
        backing = str(vm_scratch / f"{vg}.img")
        lvmvol("pool", "init", "--file", backing, "--file-size", file_size, "--vg", vg, "--name", "fp")
        pool = FilePool(vg=vg, name="fp", backing=backing)
        created.append(pool)
        return pool

    yield make

    for pool in created:
        if not os.path.exists(pool.backing):
            continue
        loops = loop_devices_of(pool.backing)
        if not loops:
            loops = [run_command(["losetup", "--find", "--show", pool.backing]).stdout.strip()]
        for loop in loops:
            for problem in release_loop_device(LoopDevice(loop, Path(pool.backing))):
                print(f"cleanup of {pool.backing} failed: {problem}", file=sys.stderr)


def lv_size(vg: str, name: str) -> int:
    rows = lvm_json("lvs", "-o", "lv_name,lv_size", vg)
    return int(next(row["lv_size"] for row in rows if row["lv_name"] == name))


def block_size(device: str) -> int:
    return int(run_command(["blockdev", "--getsize64", device]).stdout.strip())


def statvfs_bytes(mountpoint: str) -> int:
    """Return the filesystem size that df shows for ``mountpoint``, in bytes."""
    status = os.statvfs(mountpoint)
    return status.f_blocks * status.f_frsize
