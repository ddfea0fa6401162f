"""Block devices: what is on them, who holds them, and loop devices for file-backed pools."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from lvmvol.errors import InvalidInput, NotFound
from lvmvol.runner import Runner


@dataclass(frozen=True)
class BlockDevice:
    path: str
    major: int
    minor: int

    @property
    def sysfs(self) -> Path:
        return Path(f"/sys/dev/block/{self.major}:{self.minor}")


def block_device(path: str) -> BlockDevice:
    """Return the block device at ``path``; raise if it is missing or not a block device."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise NotFound(f"device {path} not found", "check the path with lsblk") from None
    if not stat.S_ISBLK(status.st_mode):
        raise InvalidInput(
            f"{path} is not a block device",
            "pass a disk or partition, or use --file for a loop-backed pool",
        )
    return BlockDevice(path, os.major(status.st_rdev), os.minor(status.st_rdev))


def holders(device: BlockDevice) -> list[str]:
    """Return the kernel names of devices stacked on ``device`` (dm-crypt, LVM, RAID)."""
    try:
        return sorted(os.listdir(device.sysfs / "holders"))
    except FileNotFoundError:
        return []


def partitions(device: BlockDevice) -> list[BlockDevice]:
    """Return the partitions of a whole disk, read from sysfs."""
    found = []
    try:
        children = list(device.sysfs.iterdir())
    except FileNotFoundError:
        return []
    for child in children:
        dev_file = child / "dev"
        if (child / "partition").exists() and dev_file.exists():
            major, _, minor = dev_file.read_text().strip().partition(":")
            found.append(BlockDevice(f"/dev/{child.name}", int(major), int(minor)))
    return found


def is_swap(device: BlockDevice, swaps_text: str | None = None) -> bool:
    """Return True when ``device`` is an active swap area in /proc/swaps."""
    if swaps_text is None:
        try:
            swaps_text = Path("/proc/swaps").read_text()
        except FileNotFoundError:
            return False
    for line in swaps_text.splitlines()[1:]:
        name = line.split()[0] if line.split() else ""
        try:
            status = os.stat(name)
        except OSError:
            continue
        if stat.S_ISBLK(status.st_mode) and status.st_rdev == os.makedev(device.major, device.minor):
            return True
    return False


def signatures(runner: Runner, path: str) -> dict[str, str]:
    """Return what ``blkid --probe`` finds on ``path`` (TYPE, PTTYPE, ...); empty when nothing."""
    result = runner.run(
        ["blkid", "--probe", "--output", "export", path], mutating=False, ok_codes=(0, 2)
    )
    found = {}
    for line in result.stdout.splitlines():
        key, separator, value = line.partition("=")
        if separator and key in ("TYPE", "PTTYPE", "USAGE", "UUID", "LABEL", "VERSION"):
            found[key] = value
    return found


def wipe_signatures(runner: Runner, path: str) -> None:
    runner.run(["wipefs", "--all", path], mutating=True)


def loop_devices_of(runner: Runner, backing_file: str) -> list[str]:
    """Return the loop devices attached to ``backing_file``."""
    result = runner.run(
        ["losetup", "--list", "--json", "--output", "NAME,BACK-FILE"], mutating=False
    )
    if not result.stdout.strip():
        return []
    wanted = os.path.realpath(backing_file)
    devices = []
    for row in json.loads(result.stdout).get("loopdevices", []):
        back_file = (row.get("back-file") or "").removesuffix(" (deleted)")
        if back_file and os.path.realpath(back_file) == wanted:
            devices.append(row["name"])
    return devices


def attach_loop(runner: Runner, backing_file: str) -> str:
    """Attach ``backing_file`` to a free loop device and return the device path."""
    result = runner.run(["losetup", "--find", "--show", backing_file], mutating=True)
    return result.stdout.strip()


def detach_loop(runner: Runner, device: str) -> None:
    runner.run(["losetup", "--detach", device], mutating=True)
