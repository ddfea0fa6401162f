"""Mounting and unmounting volumes, opening and closing their dm-crypt mappings."""

from __future__ import annotations

import os

from lvmvol import fs, lvm
from lvmvol.crypt import Key
from lvmvol.errors import CommandError, Conflict, InvalidInput
from lvmvol.mounts import MountEntry, mount, read_mount_table, umount
from lvmvol.names import lv_device_path
from lvmvol.ops.context import Context, Outcome, wait_for_device
from lvmvol.ops.encryption import close_volume, open_volume, recorded_key
from lvmvol.ops.inventory import Volume, read_inventory


def ensure_active(ctx: Context, volume: Volume) -> str:
    """Activate ``volume`` if needed, wait for its node, and return the device path."""
    device = lv_device_path(volume.vg, volume.name)
    if not volume.lv.active:
        lvm.activate(ctx.runner, volume.vg, volume.name)
    wait_for_device(ctx, device)
    return device


def default_mountpoint(ctx: Context, name: str) -> str:
    return os.path.join(ctx.config.mount_root, name)


def mount_volume(
    ctx: Context,
    spec: str,
    mountpoint: str | None = None,
    key: Key | None = None,
    allow_discards: bool | None = None,
) -> Outcome:
    """Mount a volume at ``mountpoint`` (default: mount_root/NAME); a no-op when it already is.

    An encrypted volume's mapping is opened first, with ``key`` or the
    recorded key file; if the mount then fails, the mapping is closed again.
    """
    inventory = read_inventory(ctx)
    volume = inventory.volume(spec)
    if volume.filesystem == "none":
        raise InvalidInput(
            f"volume {volume.full_name} has no filesystem (created with --fs none)",
            f"use its device {volume.mapping_device or volume.device} directly",
        )
    if volume.incomplete:
        raise Conflict(
            f"volume {volume.full_name} was not finished (its filesystem may be missing)",
            "run the same 'lvmvol volume create' again to finish it",
        )
    if volume.encrypting:
        raise Conflict(
            f"the encryption of volume {volume.full_name} is unfinished, so part of it is still plain",
            f"finish it with 'lvmvol volume encrypt {volume.name}'",
        )
    if not volume.encrypted and (key is not None or allow_discards):
        raise InvalidInput(f"volume {volume.full_name} is not encrypted; drop the key and discard options")
    target = os.path.normpath(mountpoint or default_mountpoint(ctx, volume.name))
    check_mountpoint_path(target)
    details = {"mountpoint": target}

    if any(entry.mountpoint == target for entry in volume.mounts):
        return Outcome(volume.name, False, details)
    if volume.mounts:
        raise Conflict(
            f"volume {volume.full_name} is already mounted at {volume.mountpoint}",
            f"unmount it first with: lvmvol volume umount {volume.name}",
        )
    _check_mountpoint_free(target)

    opened_here = volume.encrypted and not volume.mapping_open
    if opened_here:
        # Check the key before activation, so a missing key changes nothing.
        key = recorded_key(volume, key)
    device = ensure_active(ctx, volume)
    if volume.encrypted:
        device = open_volume(ctx, volume, device, key, allow_discards)
    if not ctx.dry_run:
        os.makedirs(target, mode=0o755, exist_ok=True)
    try:
        mount(ctx.runner, device, target, volume.filesystem, fs.mount_options(volume.filesystem))
    except CommandError:
        if opened_here:
            close_volume(ctx, read_inventory(ctx).volume(volume.full_name))
        raise

    if not ctx.dry_run:
        _verify_mounted(target)
    return Outcome(volume.name, True, details)


# Kernel filesystems, where a mount would hide or break the kernel's own files.
KERNEL_FILESYSTEM_ROOTS = ("/proc", "/sys", "/dev")


def check_mountpoint_path(path: str) -> None:
    """Raise ``InvalidInput`` for a relative mountpoint or one under /proc, /sys or /dev.

    A relative path would depend on the directory a script happens to run
    in, so it is rejected rather than resolved.
    """
    if not os.path.isabs(path):
        raise InvalidInput(f"mountpoint {path!r} is a relative path", "give an absolute path, such as /srv/data")
    for root in KERNEL_FILESYSTEM_ROOTS:
        if path == root or path.startswith(root + "/"):
            raise InvalidInput(
                f"mountpoint {path} is under {root}, which the kernel manages",
                "choose a directory on a regular filesystem, such as one under mount_root",
            )


def _check_mountpoint_free(target: str) -> None:
    occupied = [entry for entry in read_mount_table() if entry.mountpoint == target]
    if occupied:
        raise Conflict(
            f"{target} is already a mountpoint of {occupied[-1].source}",
            "choose another mountpoint",
        )
    if os.path.exists(target) and not os.path.isdir(target):
        raise InvalidInput(f"mountpoint {target} exists and is not a directory")


def _verify_mounted(target: str) -> None:
    if not any(entry.mountpoint == target for entry in read_mount_table()):
        raise Conflict(
            f"mount reported success but {target} is not in the mount table",
            "check 'dmesg' for the kernel's reason",
        )


def unmount_all(ctx: Context, mounts: list[MountEntry]) -> list[str]:
    """Unmount ``mounts``, deepest first, and remove empty mountpoints under the mount root."""
    mountpoints = sorted((entry.mountpoint for entry in mounts), key=len, reverse=True)
    for mountpoint in mountpoints:
        umount(ctx.runner, mountpoint)
        _remove_empty_mountpoint(ctx, mountpoint)
    return mountpoints


def umount_volume(ctx: Context, spec: str) -> Outcome:
    """Unmount every mount of a volume in this mount namespace and close its dm-crypt mapping.

    A no-op when nothing is mounted or open. An empty mountpoint directory
    under the configured mount root is removed too.
    """
    inventory = read_inventory(ctx)
    volume = inventory.volume(spec)
    mountpoints = unmount_all(ctx, volume.mounts)
    closed = close_volume(ctx, volume) if volume.encrypted else False
    details = {"mountpoints": mountpoints}
    if volume.encrypted:
        details["mapping_closed"] = closed
    return Outcome(volume.name, bool(mountpoints) or closed, details)


def _remove_empty_mountpoint(ctx: Context, mountpoint: str) -> None:
    root = os.path.abspath(ctx.config.mount_root)
    if ctx.dry_run or os.path.dirname(os.path.abspath(mountpoint)) != root:
        return
    try:
        os.rmdir(mountpoint)
    except OSError:
        pass  # not empty, or already gone: leave it
