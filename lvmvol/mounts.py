"""The kernel's mount table, read from /proc, and the mount and umount commands.

Whether a volume is mounted is always read from the kernel
(``/proc/self/mountinfo``), matched on the device's major:minor numbers, so
it cannot drift the way a saved counter can.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from lvmvol.errors import InvalidInput
from lvmvol.runner import Runner

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountEntry:
    """One line of a mountinfo file."""

    major: int
    minor: int
    root: str
    mountpoint: str
    fstype: str
    source: str
    options: str


def _unescape(field: str) -> str:
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[MountEntry]:
    """Parse the format of proc(5) ``/proc/PID/mountinfo``."""
    entries = []
    for line in text.splitlines():
        before, separator, after = line.partition(" - ")
        if not separator:
            continue
        fields = before.split()
        tail = after.split()
        if len(fields) < 6 or len(tail) < 2:
            continue
        major, _, minor = fields[2].partition(":")
        entries.append(
            MountEntry(
                major=int(major),
                minor=int(minor),
                root=_unescape(fields[3]),
                mountpoint=_unescape(fields[4]),
                fstype=tail[0],
                source=_unescape(tail[1]),
                options=fields[5],
            )
        )
    return entries


# The kernel's mount table of process PID, in the mount namespace of that process.
MOUNTINFO = "/proc/{pid}/mountinfo"


def read_mount_table(pid: str = "self") -> list[MountEntry]:
    # Mountpoints are bytes to the kernel; surrogateescape keeps a name that
    # is not UTF-8 from breaking every command on the host.
    with open(MOUNTINFO.format(pid=pid), "rb") as handle:
        raw = handle.read()
    return parse_mountinfo(raw.decode("utf-8", errors="surrogateescape"))


def mounts_of(entries: list[MountEntry], major: int | None, minor: int | None) -> list[MountEntry]:
    if major is None or minor is None:
        return []
    return [entry for entry in entries if (entry.major, entry.minor) == (major, minor)]


def mounts_by_device(entries: list[MountEntry]) -> dict[tuple[int, int], list[MountEntry]]:
    """Group ``entries`` by device number, so a listing looks each volume up once instead of scanning the table."""
    grouped: dict[tuple[int, int], list[MountEntry]] = {}
    for entry in entries:
        grouped.setdefault((entry.major, entry.minor), []).append(entry)
    return grouped


def mounts_in_other_namespaces(major: int, minor: int) -> list[tuple[int, str]]:
    """Return ``(pid, mountpoint)`` for mounts of the device in other mount namespaces.

    Reads one process's mountinfo per mount namespace. Processes that exit
    or deny access while being read are skipped.
    """
    try:
        own_namespace = os.readlink("/proc/self/ns/mnt")
    except OSError:
        return []
    seen = {own_namespace}
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            namespace = os.readlink(f"/proc/{entry.name}/ns/mnt")
            if namespace in seen:
                continue
            seen.add(namespace)
            table = read_mount_table(entry.name)
        except OSError:
            continue
        for mount in mounts_of(table, major, minor):
            found.append((int(entry.name), mount.mountpoint))
    return found


# Options that make mount(8) do something other than mount a filesystem
# from the volume's device at the mountpoint.
REJECTED_OPTIONS = ("bind", "rbind", "move", "remount", "loop")


def split_options(text: str, where: str) -> list[str]:
    """Split the comma-separated mount options ``text``; ``where`` names their source in errors.

    Raises ``InvalidInput`` for an empty option, whitespace, or an option in
    ``REJECTED_OPTIONS``.
    """
    if not text:
        return []
    options = text.split(",")
    for option in options:
        if not option or any(char.isspace() for char in option):
            raise InvalidInput(
                f"invalid mount options {text!r} in {where}: empty option or whitespace",
                "separate options with single commas, such as nodev,noexec",
            )
        if option.partition("=")[0] in REJECTED_OPTIONS:
            raise InvalidInput(
                f"mount option {option!r} in {where} is not allowed, because lvmvol mounts the volume itself",
                "remove it",
            )
    return options


def _option_key(option: str) -> str:
    """Return what an option sets: ``rw`` for ro and rw, ``dev`` for dev and nodev, ``KEY`` for KEY=VALUE."""
    name = option.partition("=")[0]
    if name in ("ro", "rw"):
        return "rw"
    return name[2:] if name.startswith("no") else name


def merge_options(*option_lists: list[str]) -> list[str]:
    """Merge mount option lists; an option replaces an earlier one that sets the same thing.

    ``dev`` replaces ``nodev``, ``ro`` replaces ``rw``, and ``KEY=VALUE``
    replaces an earlier value of KEY.
    """
    merged: list[str] = []
    for options in option_lists:
        for option in options:
            key = _option_key(option)
            merged = [earlier for earlier in merged if _option_key(earlier) != key]
            merged.append(option)
    return merged


def mount(runner: Runner, device: str, mountpoint: str, fstype: str, options: list[str]) -> None:
    argv = ["mount", "-t", fstype]
    if options:
        argv += ["-o", ",".join(options)]
    runner.run([*argv, device, mountpoint], mutating=True)


def umount(runner: Runner, mountpoint: str, lazy: bool = False) -> None:
    """Unmount ``mountpoint``; ``lazy`` detaches it now and lets the kernel finish when it is no longer busy."""
    argv = ["umount", "--lazy"] if lazy else ["umount"]
    runner.run([*argv, mountpoint], mutating=True)
