"""Stand-ins for the dm-crypt mappings and mounts that cryptsetup and mount would make, and key file helpers.

The unit test host has no device-mapper, so no ``/dev/mapper/luks-*`` node
ever exists there. ``FakeKernel`` keeps a table of the mappings and mounts
that the fake runner's ``cryptsetup open``/``close`` and ``mount``/``umount``
calls would have left on a real host. lvmvol's existence checks and mount
table reads return what that table contains.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lvmvol import tags
from lvmvol.mounts import MountEntry

from .fakes import FakeRunner, lv_row

MAPPER_PREFIX = "/dev/mapper/luks-"
# Kernel numbers of faked mappings: the major that the recorded lvs reports
# show for device-mapper devices, and minors above the ones they use.
DM_MAJOR = 254
FIRST_MINOR = 20
# Modules that import read_mount_table by name, as in conftest.mount_table.
MOUNT_TABLE_READERS = ("lvmvol.ops.inventory", "lvmvol.ops.mounting", "lvmvol.ops.pools")


class FakeKernel:
    """The dm-crypt mappings and mounts that the fake runner's commands would have made.

    A non-dry-run ``cryptsetup open`` adds a mapping and ``cryptsetup close``
    removes it. ``mount`` adds a mount table entry and ``umount`` removes it.
    ``os.path.exists`` and ``os.stat`` are replaced only for paths under
    ``/dev/mapper/luks-``. Every other path reaches the real functions.
    """

    def __init__(self, runner: FakeRunner, monkeypatch: pytest.MonkeyPatch, mounts: list[MountEntry]):
        self.runner = runner
        # Mapping name -> minor number of its dm device.
        self.mappings: dict[str, int] = {}
        self.mounts = list(mounts)
        self._next_minor = FIRST_MINOR
        self._real_exists = os.path.exists
        self._real_stat = os.stat
        self._real_run = runner.run

        monkeypatch.setattr(os.path, "exists", self._exists)
        monkeypatch.setattr(os, "stat", self._stat)
        monkeypatch.setattr(runner, "run", self._run)
        for module in MOUNT_TABLE_READERS:
            monkeypatch.setattr(f"{module}.read_mount_table", self.read_mount_table)

    def open_mapping(self, name: str) -> int:
        """Add the mapping ``name`` as if cryptsetup had opened it, and return its minor number."""
        self.mappings[name] = self._next_minor
        self._next_minor += 1
        return self.mappings[name]

    def mount_mapping(self, name: str, mountpoint: str, fstype: str = "ext4") -> None:
        """Open the mapping ``name`` if needed and add a mount of it at ``mountpoint``."""
        if name not in self.mappings:
            self.open_mapping(name)
        self.mounts.append(self._entry(f"/dev/mapper/{name}", mountpoint, fstype))

    def read_mount_table(self, pid: str = "self") -> list[MountEntry]:
        return list(self.mounts)

    def _mapping_name(self, path: object) -> str | None:
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str) or not path.startswith(MAPPER_PREFIX):
            return None
        return path[len("/dev/mapper/"):]

    def _exists(self, path) -> bool:
        name = self._mapping_name(path)
        if name is None:
            return self._real_exists(path)
        return name in self.mappings

    def _stat(self, path, *args, **keywords):
        name = self._mapping_name(path)
        if name is None:
            return self._real_stat(path, *args, **keywords)
        if name not in self.mappings:
            raise FileNotFoundError(2, "No such file or directory", path)
        device = os.makedev(DM_MAJOR, self.mappings[name])
        return os.stat_result((stat.S_IFBLK | 0o660, 0, 0, 1, 0, 6, 0, 0, 0, 0), {"st_rdev": device})

    def _entry(self, device: str, mountpoint: str, fstype: str) -> MountEntry:
        name = self._mapping_name(device)
        if name in self.mappings:
            major, minor = DM_MAJOR, self.mappings[name]
        else:
            # These tests never look up a plain LV's mount by its numbers.
            major, minor = 0, 0
        return MountEntry(major, minor, "/", mountpoint, fstype, device, "rw,relatime")

    def _run(self, argv, **options):
        result = self._real_run(argv, **options)
        if not result.dry_run:
            self._apply([str(arg) for arg in argv])
        return result

    def _apply(self, argv: list[str]) -> None:
        if argv[:2] == ["cryptsetup", "open"] and "--test-passphrase" not in argv:
            self.open_mapping(argv[-1])
        elif argv[:2] == ["cryptsetup", "close"]:
            self.mappings.pop(argv[-1], None)
        elif argv[0] == "mount":
            fstype = argv[argv.index("-t") + 1]
            self.mounts.append(self._entry(argv[-2], argv[-1], fstype))
        elif argv[0] == "umount":
            self.mounts = [entry for entry in self.mounts if entry.mountpoint != argv[-1]]


def write_key_file(path: Path, mode: int = 0o600, data: bytes = b"k" * 64) -> str:
    """Write a key file with ``mode`` and return its path as a string."""
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def encrypted_row(
    name: str,
    key_source: str,
    generated: bool = False,
    discards: bool = False,
    incomplete: bool = False,
) -> dict[str, str]:
    """Return the recorded smokevg row of ``name`` with the tags of a LUKS2 volume."""
    row = lv_row(name)
    volume_tags = [
        tags.VOLUME,
        tags.setting_tag(tags.FILESYSTEM, "ext4"),
        tags.setting_tag(tags.CRYPT, "luks2"),
        tags.setting_tag(tags.KEY, key_source),
    ]
    if generated:
        volume_tags.append(tags.setting_tag(tags.KEY_GENERATED, "1"))
    if discards:
        volume_tags.append(tags.setting_tag(tags.DISCARDS, "1"))
    if incomplete:
        volume_tags.append(tags.INCOMPLETE)
    row["lv_tags"] = ",".join(volume_tags)
    return row
