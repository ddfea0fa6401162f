"""Filesystems on volumes: making them and the mount options each type needs."""

from __future__ import annotations

import re

from lvmvol.errors import InvalidInput
from lvmvol.runner import Runner
from lvmvol.units import format_size

MiB = 1024 * 1024

# How far a grown filesystem may stay below its device's size. resize2fs
# leaves out a last block group too small for its own bitmaps and inode
# table (up to a few MiB with 4 KiB blocks); xfs_growfs leaves out a last
# allocation group of fewer than 64 blocks.
GROW_SLACK = {"ext4": 8 * MiB, "xfs": 1 * MiB}

# xfsprogs 5.19 and later refuse to make a filesystem smaller than 300 MiB.
XFS_MIN_SIZE = 300 * 1024 * 1024


def validate_size(fstype: str, size: int) -> None:
    """Raise ``InvalidInput`` when ``fstype`` cannot be made on ``size`` bytes."""
    if fstype == "xfs" and size < XFS_MIN_SIZE:
        raise InvalidInput(
            f"an XFS filesystem needs at least {format_size(XFS_MIN_SIZE)}, "
            f"and the volume would be {format_size(size)}",
            "pass --size 300M or more, or --fs ext4",
        )


def make_filesystem(runner: Runner, fstype: str, device: str) -> None:
    """Make ``fstype`` on ``device``, overwriting whatever is there.

    Discards at mkfs time are skipped: a new thin volume has no blocks
    allocated, so there is nothing to discard and the pass only costs time.
    """
    if fstype == "ext4":
        argv = ["mkfs.ext4", "-q", "-F", "-E", "nodiscard", device]
    elif fstype == "xfs":
        argv = ["mkfs.xfs", "-q", "-f", "-K", device]
    else:
        raise InvalidInput(f"unknown filesystem {fstype!r}", "use ext4, xfs or none")
    runner.run(argv, mutating=True)


def mount_options(fstype: str) -> list[str]:
    """Return the options every mount of ``fstype`` on a thin volume needs.

    XFS refuses to mount two filesystems with the same UUID, and a thin
    snapshot carries its origin's UUID, so XFS mounts always use ``nouuid``.
    """
    if fstype == "xfs":
        return ["nouuid"]
    return []


def grow_filesystem(runner: Runner, fstype: str, device: str, mountpoint: str) -> None:
    """Grow the mounted filesystem on ``device`` to the device's size.

    Both tools grow a mounted filesystem online; xfs_growfs works only on a
    mounted one and takes the mountpoint.
    """
    if fstype == "ext4":
        argv = ["resize2fs", device]
    elif fstype == "xfs":
        argv = ["xfs_growfs", mountpoint]
    else:
        raise InvalidInput(f"cannot grow filesystem {fstype!r}", "only ext4 and xfs can grow")
    runner.run(argv, mutating=True)


_EXT4_FIELD = re.compile(r"^(Block count|Block size):\s+(\d+)\s*$", re.MULTILINE)
_XFS_DATA = re.compile(r"^data\s+=\s*bsize=(\d+)\s+blocks=(\d+)", re.MULTILINE)


def parse_dumpe2fs_size(output: str) -> int:
    """Return the filesystem size in bytes from ``dumpe2fs -h`` output (e2fsprogs 1.47)."""
    fields = dict(_EXT4_FIELD.findall(output))
    return int(fields["Block count"]) * int(fields["Block size"])


def parse_xfs_info_size(output: str) -> int:
    """Return the data section's size in bytes from ``xfs_info`` output (xfsprogs 6.1)."""
    match = _XFS_DATA.search(output)
    if match is None:
        raise ValueError("no 'data = bsize=N blocks=N' line in xfs_info output")
    return int(match.group(1)) * int(match.group(2))


def filesystem_size(runner: Runner, fstype: str, device: str, mountpoint: str) -> int:
    """Return the size in bytes that the filesystem on ``device``, mounted at ``mountpoint``, spans."""
    if fstype == "ext4":
        result = runner.run(["dumpe2fs", "-h", device], mutating=False)
        return parse_dumpe2fs_size(result.stdout)
    result = runner.run(["xfs_info", mountpoint], mutating=False)
    return parse_xfs_info_size(result.stdout)
