"""Block devices: what is on them, who holds them, and loop devices for file-backed pools."""

from __future__ import annotations

import json
import os
import stat
import struct
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


# LUKS magic bytes. A LUKS1 header and a LUKS2 primary header start with
# LUKS_MAGIC; a LUKS2 secondary header starts with LUKS2_SECONDARY_MAGIC.
# The big-endian 16-bit version follows at byte 6. Source: the LUKS2 On-Disk
# Format Specification, and LUKS2_HDR2_OFFSETS in cryptsetup's lib/luks2/luks2.h.
LUKS_MAGIC = b"LUKS\xba\xbe"
LUKS2_SECONDARY_MAGIC = b"SKUL\xba\xbe"
# Offsets at which a LUKS2 secondary header can start: the primary header's
# size, which is 16 KiB, 32 KiB, ... up to 4 MiB.
LUKS2_SECONDARY_OFFSETS = tuple(16 * 1024 * 2**power for power in range(9))


@dataclass(frozen=True)
class LuksHeader:
    """A LUKS header found by its magic bytes."""

    offset: int
    version: int
    secondary: bool

    def describe(self) -> str:
        kind = "secondary header" if self.secondary else "header"
        return f"a LUKS{self.version} {kind} at byte {self.offset}"


def find_luks_headers(path: str) -> list[LuksHeader]:
    """Return the LUKS headers whose magic bytes are on ``path``, primary and secondary.

    This also finds a LUKS2 secondary header left behind by an older wipefs,
    which erased only the primary header. cryptsetup can restore the whole
    header from such a secondary header.
    """
    found = []
    with open(path, "rb") as device:
        size = device.seek(0, os.SEEK_END)
        for offset in (0, *LUKS2_SECONDARY_OFFSETS):
            if offset + 8 > size:
                break
            device.seek(offset)
            start = device.read(8)
            magic, version = start[:6], struct.unpack(">H", start[6:8])[0]
            if offset == 0 and magic == LUKS_MAGIC:
                found.append(LuksHeader(offset, version, secondary=False))
            elif offset > 0 and magic == LUKS2_SECONDARY_MAGIC:
                found.append(LuksHeader(offset, version, secondary=True))
    return found


def checksum_start(path: str, length: int) -> str:
    """Return the SHA-256 (hexadecimal) of the first ``length`` bytes of ``path``."""
    import hashlib  # imported here: only in-place encryption checksums a device

    digest = hashlib.sha256()
    with open(path, "rb") as device:
        remaining = length
        while remaining > 0:
            chunk = device.read(min(remaining, 1024 * 1024))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


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
