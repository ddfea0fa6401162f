"""Processes that use files on a filesystem, found in /proc.

A process keeps a filesystem busy through its working directory, its root
directory, open files and memory-mapped files. These are matched on the
device number of the filesystem, not on paths, so that a process is found
whichever mountpoint (bind mount, other mount namespace) it reached the
files through.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# Uses shown per process; the rest are counted.
USES_SHOWN = 3


@dataclass
class ProcessUse:
    """One process and how it uses a filesystem."""

    pid: int
    command: str
    uses: list[str] = field(default_factory=list)

    def describe(self) -> str:
        listed = ", ".join(self.uses[:USES_SHOWN])
        more = len(self.uses) - USES_SHOWN
        if more > 0:
            listed += f" and {more} more"
        return f"process {self.pid} ({self.command}): {listed}"


def parse_maps_devices(text: str) -> list[tuple[int, int, str]]:
    """Return ``(major, minor, path)`` of each file-backed mapping in a proc(5) ``maps`` file.

    Anonymous mappings (inode 0) are skipped; the device is hexadecimal there.
    """
    found = []
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or fields[4] == "0":
            continue
        major, separator, minor = fields[3].partition(":")
        try:
            found.append((int(major, 16), int(minor, 16), fields[5]))
        except ValueError:
            continue
    return found


def users_of_filesystem(major: int, minor: int, proc: str = "/proc") -> list[ProcessUse]:
    """Return the processes whose working directory, root, open files or mapped files are on ``major:minor``.

    Processes that exit, or whose entries cannot be read, while the scan
    runs are skipped.
    """
    device = os.makedev(major, minor)
    found = []
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        base = os.path.join(proc, entry.name)
        try:
            with open(os.path.join(base, "comm")) as handle:
                command = handle.read().strip()
        except OSError:
            continue
        use = ProcessUse(int(entry.name), command)
        for link, label in (("cwd", "working directory"), ("root", "root directory")):
            path = os.path.join(base, link)
            if _on_device(path, device):
                use.uses.append(f"{label} {_link_target(path)}")
        use.uses += _open_files(os.path.join(base, "fd"), device)
        use.uses += _mapped_files(os.path.join(base, "maps"), major, minor)
        if use.uses:
            found.append(use)
    return found


def _on_device(path: str, device: int) -> bool:
    try:
        return os.stat(path).st_dev == device
    except OSError:
        return False


def _link_target(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _open_files(fd_directory: str, device: int) -> list[str]:
    try:
        descriptors = os.listdir(fd_directory)
    except OSError:
        return []
    uses = []
    for descriptor in sorted(descriptors, key=lambda name: int(name) if name.isdigit() else 0):
        path = os.path.join(fd_directory, descriptor)
        if _on_device(path, device):
            uses.append(f"open file {_link_target(path)}")
    return uses


def _mapped_files(maps_path: str, major: int, minor: int) -> list[str]:
    try:
        with open(maps_path) as handle:
            text = handle.read()
    except OSError:
        return []
    paths = dict.fromkeys(path for map_major, map_minor, path in parse_maps_devices(text) if (map_major, map_minor) == (major, minor))
    return [f"mapped file {path}" for path in paths]
