"""Filesystems on volumes: making them, the mount options each type needs, freezing them."""

from __future__ import annotations

import re

from lvmvol.errors import CommandError, CommandTimeout, InvalidInput
from lvmvol.runner import DetachedProcess, Runner
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


def mount_options(fstype: str, read_only: bool) -> list[str]:
    """Return the options every mount of ``fstype`` on a thin volume needs.

    XFS refuses to mount two filesystems with the same UUID, and a thin
    snapshot carries its origin's UUID, so XFS mounts always use ``nouuid``.
    A read-only XFS mount also gets ``norecovery``: XFS would otherwise
    replay a dirty log, which writes to the device, and fails on a
    read-only LV. The log stays for the next read-write mount to replay.
    """
    # NOTE: lvm2 freezes a filesystem only when it is directly on the LV it
    # snapshots. A snapshot of a mounted encrypted volume is taken without a
    # freeze, so a norecovery mount of it can miss what only the log holds.
    if fstype == "xfs":
        return ["nouuid", "norecovery"] if read_only else ["nouuid"]
    return []


# The thaw guard: a bash process that thaws the filesystem at $1 unless lvmvol
# writes "released" to it first. When lvmvol dies, even by SIGKILL, read gets
# end-of-file at once; read -t bounds the wait at $2 seconds even if lvmvol
# hangs. The thaw is logged to syslog, because lvmvol is no longer there to report it.
THAW_GUARD_SCRIPT = (
    'read -r -t "$2" reply\n'
    'if [ "$reply" != released ] && fsfreeze --unfreeze "$1"; then\n'
    '    logger -t lvmvol "thawed $1, which an lvmvol command had frozen and did not thaw"\n'
    "fi\n"
)
THAW_GUARD_RELEASE = "released"


def start_thaw_guard(runner: Runner, mountpoint: str, timeout: float) -> DetachedProcess | None:
    """Start the process that thaws ``mountpoint`` if lvmvol stops before it thaws it itself.

    Call ``finish(THAW_GUARD_RELEASE)`` on the result once the filesystem is
    thawed, or was never frozen; ``finish()`` without it makes the guard
    thaw at once. None in a dry run.
    """
    argv = ["bash", "-c", THAW_GUARD_SCRIPT, "lvmvol-thaw-guard", mountpoint, str(max(1, round(timeout)))]
    return runner.start_detached(argv, mutating=True)


def freeze(runner: Runner, mountpoint: str) -> None:
    """Freeze the filesystem at ``mountpoint``: writes block until ``thaw``, and the disk is clean."""
    try:
        runner.run(["fsfreeze", "--freeze", mountpoint], mutating=True)
    except CommandTimeout:
        raise
    except CommandError as error:
        raise CommandError(
            error.argv, error.returncode, error.stderr, error.duration,
            hint=f"if {mountpoint} is frozen already, thaw it with 'fsfreeze --unfreeze {mountpoint}'",
        ) from None


def thaw(runner: Runner, mountpoint: str) -> None:
    """Thaw the filesystem at ``mountpoint`` that ``freeze`` froze."""
    try:
        runner.run(["fsfreeze", "--unfreeze", mountpoint], mutating=True)
    except CommandTimeout:
        raise
    except CommandError as error:
        raise CommandError(
            error.argv, error.returncode, error.stderr, error.duration,
            hint=f"if writes to {mountpoint} hang, run 'fsfreeze --unfreeze {mountpoint}'",
        ) from None


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
