"""Block devices: what is on them, who holds them, and loop devices for file-backed pools."""

from __future__ import annotations

import errno
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


def refresh_loop_size(runner: Runner, device: str) -> None:
    """Make the loop ``device`` take the current size of its backing file."""
    runner.run(["losetup", "--set-capacity", device], mutating=True)


def device_size(path: str) -> int:
    """Return the size in bytes of the block device (or file) at ``path``."""
    with open(path, "rb") as handle:
        return handle.seek(0, os.SEEK_END)


def settle_udev(runner: Runner, timeout: float) -> None:
    """Wait until udev has processed the events queued so far, such as a new loop device's."""
    runner.run(["udevadm", "settle", f"--timeout={int(timeout)}"], mutating=False)


@dataclass(frozen=True)
class Signature:
    """One signature that ``wipefs`` lists: a filesystem, partition table, LUKS or RAID header."""

    device: str
    offset: str
    type: str
    uuid: str = ""
    label: str = ""

    def describe(self) -> str:
        text = f"{self.type} at offset {self.offset} on {self.device}"
        if self.label:
            text += f" (label {self.label!r})"
        return text


def list_signatures(runner: Runner, path: str) -> list[Signature]:
    """Return every signature on ``path`` as ``wipefs --no-act`` lists them, which erases nothing."""
    result = runner.run(["wipefs", "--no-act", "--json", path], mutating=False)
    if not result.stdout.strip():
        return []
    found = []
    for row in json.loads(result.stdout).get("signatures", []):
        name = row.get("device") or path
        found.append(
            Signature(
                device=name if name.startswith("/") else f"/dev/{name}",
                offset=str(row.get("offset", "")),
                type=str(row.get("type", "")),
                uuid=row.get("uuid") or "",
                label=row.get("label") or "",
            )
        )
    return found


def exclusive_open_error(path: str) -> str | None:
    """Return why ``path`` cannot be opened with O_EXCL, or None when it can.

    The kernel refuses an exclusive open of a block device with EBUSY while
    a filesystem is mounted on it, or device-mapper, MD RAID, swap or
    another program holds it exclusively. Programs that opened it without
    O_EXCL stay invisible to this probe.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.EBUSY:
            return f"{path} is open exclusively by the kernel or another program"
        return None
    os.close(descriptor)
    return None


def dm_open_count(runner: Runner, device: BlockDevice) -> int:
    """Return how many openers a device-mapper device has; 0 for any other device."""
    if not (device.sysfs / "dm").exists():
        return 0
    result = runner.run(
        ["dmsetup", "info", "-c", "--noheadings", "-o", "open", "-j", str(device.major), "-m", str(device.minor)],
        mutating=False,
    )
    text = result.stdout.strip()
    return int(text) if text.isdigit() else 0


def device_aliases(device: BlockDevice, dev_root: str = "/dev") -> list[str]:
    """Return the names of ``device`` under /dev: its node and the udev symlinks that point to it."""
    aliases = [device.path]
    real = os.path.realpath(device.path)
    if real not in aliases:
        aliases.append(real)
    for directory in ("disk/by-id", "disk/by-path", "disk/by-uuid", "disk/by-label", "disk/by-partuuid", "mapper", "block"):
        folder = os.path.join(dev_root, directory)
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            candidate = os.path.join(folder, name)
            if candidate not in aliases and os.path.realpath(candidate) == real:
                aliases.append(candidate)
    return aliases


@dataclass(frozen=True)
class DmDevice:
    """One device-mapper device as ``dmsetup info`` reports it."""

    name: str
    suspended: bool
    open_count: int
    target_types: tuple[str, ...] = ()


def list_dm_devices(runner: Runner) -> list[DmDevice]:
    """Return every device-mapper device with its suspended state, open count and target types."""
    result = runner.run(
        ["dmsetup", "info", "-c", "--noheadings", "--separator", ";", "-o", "name,suspended,open"],
        mutating=False,
    )
    found = []
    for line in result.stdout.splitlines():
        parts = line.strip().split(";")
        if len(parts) < 3 or parts[0] == "No devices found":
            continue
        found.append(DmDevice(parts[0], parts[1].strip().lower() == "suspended", int(parts[2]) if parts[2].strip().isdigit() else 0))
    return found


def crypt_mapping_names(runner: Runner) -> list[str]:
    """Return the names of the dm-crypt mappings (``dmsetup ls --target crypt``)."""
    result = runner.run(["dmsetup", "ls", "--target", "crypt"], mutating=False)
    names = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] != "No":
            names.append(fields[0])
    return names


def resume_dm_device(runner: Runner, name: str) -> None:
    """Resume a suspended device-mapper device, which also thaws a filesystem frozen by the suspend."""
    runner.run(["dmsetup", "resume", name], mutating=True)
