"""The kernel's mount table, read from /proc, and the mount and umount commands.

Whether a volume is mounted is always read from the kernel
(``/proc/self/mountinfo``), matched on the device's major:minor numbers, so
it cannot drift the way a saved counter can.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

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


def read_mount_table(pid: str = "self") -> list[MountEntry]:
    # Mountpoints are bytes to the kernel; surrogateescape keeps a name that
    # is not UTF-8 from breaking every command on the host.
    raw = Path(f"/proc/{pid}/mountinfo").read_bytes()
    return parse_mountinfo(raw.decode("utf-8", errors="surrogateescape"))


def mounts_of(entries: list[MountEntry], major: int | None, minor: int | None) -> list[MountEntry]:
    if major is None or minor is None:
        return []
    return [entry for entry in entries if (entry.major, entry.minor) == (major, minor)]


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


def mount(runner: Runner, device: str, mountpoint: str, fstype: str, options: list[str]) -> None:
    argv = ["mount", "-t", fstype]
    if options:
        argv += ["-o", ",".join(options)]
    runner.run([*argv, device, mountpoint], mutating=True)


def umount(runner: Runner, mountpoint: str) -> None:
    runner.run(["umount", mountpoint], mutating=True)
