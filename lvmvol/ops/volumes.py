"""Thin volumes: create, mount, unmount and remove."""

from __future__ import annotations

import os
from typing import Callable

from lvmvol import devices, fs, lvm, tags
from lvmvol.config import FILESYSTEMS
from lvmvol.errors import CommandError, Conflict, InvalidInput
from lvmvol.mounts import mount, mounts_in_other_namespaces, mounts_of, read_mount_table, umount
from lvmvol.names import generate_volume_name, lv_device_path, validate_lv_name
from lvmvol.ops.context import Context, Outcome, wait_for_device
from lvmvol.ops.inventory import Inventory, Volume, read_inventory
from lvmvol.units import format_size, round_up

Confirm = Callable[[str], bool]


def check_name_free(inventory: Inventory, vg: str, name: str) -> None:
    """Raise ``Conflict`` when ``name`` is taken in ``vg`` or by an lvmvol volume in another VG."""
    taken = inventory.find_lv(vg, name)
    if taken is not None and tags.VOLUME not in taken.tags:
        raise Conflict(
            f"an LV named {taken.full_name} exists and is not managed by lvmvol",
            "choose another name",
        )
    for volume in inventory.volumes:
        if volume.name == name and volume.vg != vg:
            raise Conflict(
                f"volume name {name!r} is already used in volume group {volume.vg!r}",
                "volume names must be unique on the host; choose another name",
            )


def create_volume(
    ctx: Context,
    name: str | None,
    size: int,
    pool_spec: str | None = None,
    filesystem: str | None = None,
) -> Outcome:
    """Create a thin volume of ``size`` bytes with a filesystem.

    The same name with the same size, pool and filesystem is a no-op; the
    same name with another specification raises ``Conflict`` and changes
    nothing. A volume left incomplete by an interrupted run (tagged
    ``lvmvol.incomplete``) gets its filesystem made now.
    """
    filesystem = filesystem or ctx.config.filesystem
    if filesystem not in FILESYSTEMS:
        raise InvalidInput(f"invalid filesystem {filesystem!r}", f"use one of {', '.join(FILESYSTEMS)}")
    if name is not None:
        validate_lv_name(name)
    fs.validate_size(filesystem, size)

    inventory = read_inventory(ctx)
    pool = inventory.resolve_pool(pool_spec, ctx.config.pool)
    name = name or generate_volume_name()
    validate_lv_name(name, pool.vg)
    actual_size = round_up(size, pool.lv.extent_size)
    details = {
        "vg": pool.vg,
        "pool": pool.name,
        "size_bytes": actual_size,
        "requested_size_bytes": size,
        "filesystem": filesystem,
    }
    notes = []
    if actual_size != size:
        notes.append(
            f"size rounded up from {format_size(size)} ({size} bytes) to "
            f"{format_size(actual_size)} ({actual_size} bytes), a whole number of extents"
        )

    existing = inventory.find_volume(f"{pool.vg}/{name}")
    if existing is not None:
        _check_same_spec(existing, pool.name, actual_size, filesystem)
        if not existing.incomplete:
            return Outcome(name, False, details)
    else:
        check_name_free(inventory, pool.vg, name)

    if existing is None:
        volume_tags = [tags.VOLUME, tags.INCOMPLETE, tags.setting_tag(tags.FILESYSTEM, filesystem)]
        lvm.create_thin_volume(ctx.runner, pool.vg, pool.name, name, actual_size, volume_tags)
    device = lv_device_path(pool.vg, name)
    try:
        if existing is not None and not existing.lv.active:
            lvm.activate(ctx.runner, pool.vg, name)
        wait_for_device(ctx, device)

        if filesystem != "none":
            fs.make_filesystem(ctx.runner, filesystem, device)
        lvm.change_tags(ctx.runner, pool.vg, name, add=[], remove=[tags.INCOMPLETE])
    except Exception:
        if existing is None:
            # A create that fails part way leaves nothing behind.
            lvm.remove_lv(ctx.runner, pool.vg, name)
        raise

    return Outcome(name, True, {**details, "device": device}, notes)


def _check_same_spec(existing: Volume, pool: str, size: int, filesystem: str) -> None:
    differences = []
    if existing.origin is not None:
        differences.append(f"it is a snapshot of {existing.origin}")
    if existing.lv.pool != pool:
        differences.append(f"pool {existing.lv.pool}, not {pool}")
    if existing.lv.size != size:
        differences.append(f"size {format_size(existing.lv.size)}, not {format_size(size)}")
    if existing.filesystem != filesystem:
        differences.append(f"filesystem {existing.filesystem}, not {filesystem}")
    if differences:
        raise Conflict(
            f"volume {existing.full_name} exists with another specification: "
            + "; ".join(differences),
            "choose another name, or remove the volume first",
        )


def _ensure_active(ctx: Context, volume: Volume) -> str:
    """Activate ``volume`` if needed, wait for its node, and return the device path."""
    device = lv_device_path(volume.vg, volume.name)
    if not volume.lv.active:
        lvm.activate(ctx.runner, volume.vg, volume.name)
    wait_for_device(ctx, device)
    return device


def default_mountpoint(ctx: Context, name: str) -> str:
    return os.path.join(ctx.config.mount_root, name)


def mount_volume(ctx: Context, spec: str, mountpoint: str | None = None) -> Outcome:
    """Mount a volume at ``mountpoint`` (default: mount_root/NAME); a no-op when it already is."""
    inventory = read_inventory(ctx)
    volume = inventory.volume(spec)
    if volume.filesystem == "none":
        raise InvalidInput(
            f"volume {volume.full_name} has no filesystem (created with --fs none)",
            f"use its device {volume.device} directly",
        )
    if volume.incomplete:
        raise Conflict(
            f"volume {volume.full_name} was not finished (its filesystem may be missing)",
            "run the same 'lvmvol volume create' again to finish it",
        )
    target = os.path.abspath(mountpoint or default_mountpoint(ctx, volume.name))
    details = {"mountpoint": target}

    if any(entry.mountpoint == target for entry in volume.mounts):
        return Outcome(volume.name, False, details)
    if volume.mounts:
        raise Conflict(
            f"volume {volume.full_name} is already mounted at {volume.mountpoint}",
            f"unmount it first with: lvmvol volume umount {volume.name}",
        )
    table = read_mount_table()
    occupied = [entry for entry in table if entry.mountpoint == target]
    if occupied:
        raise Conflict(
            f"{target} is already a mountpoint of {occupied[-1].source}",
            "choose another mountpoint",
        )
    if os.path.exists(target) and not os.path.isdir(target):
        raise InvalidInput(f"mountpoint {target} exists and is not a directory")

    device = _ensure_active(ctx, volume)
    if not ctx.dry_run:
        os.makedirs(target, mode=0o755, exist_ok=True)
    mount(ctx.runner, device, target, volume.filesystem, fs.mount_options(volume.filesystem))

    if not ctx.dry_run:
        _verify_mounted(volume, target)
    return Outcome(volume.name, True, details)


def _verify_mounted(volume: Volume, target: str) -> None:
    mounted = any(entry.mountpoint == target for entry in read_mount_table())
    if not mounted:
        raise Conflict(
            f"mount reported success but {target} is not in the mount table",
            "check 'dmesg' for the kernel's reason",
        )


def umount_volume(ctx: Context, spec: str) -> Outcome:
    """Unmount every mount of a volume in this mount namespace; a no-op when there is none.

    An empty mountpoint directory under the configured mount root is removed
    too, so no stale directories are left behind.
    """
    inventory = read_inventory(ctx)
    volume = inventory.volume(spec)
    mountpoints = [entry.mountpoint for entry in volume.mounts]
    if not mountpoints:
        return Outcome(volume.name, False, {"mountpoints": []})

    # Unmount the deepest mountpoint first, in case one is below another.
    for mountpoint in sorted(mountpoints, key=len, reverse=True):
        umount(ctx.runner, mountpoint)
        _remove_empty_mountpoint(ctx, mountpoint)
    return Outcome(volume.name, True, {"mountpoints": mountpoints})


def _remove_empty_mountpoint(ctx: Context, mountpoint: str) -> None:
    root = os.path.abspath(ctx.config.mount_root)
    if ctx.dry_run or os.path.dirname(os.path.abspath(mountpoint)) != root:
        return
    try:
        os.rmdir(mountpoint)
    except OSError:
        pass  # not empty, or already gone: leave it


def _holders_of(volume: Volume) -> list[str]:
    """Describe everything that holds ``volume`` open: mounts anywhere and stacked devices."""
    found = [f"mounted at {entry.mountpoint}" for entry in volume.mounts]
    if volume.lv.major is None or volume.lv.minor is None:
        return found
    for pid, mountpoint in mounts_in_other_namespaces(volume.lv.major, volume.lv.minor):
        found.append(f"mounted at {mountpoint} in the mount namespace of process {pid}")
    device = devices.BlockDevice(volume.device, volume.lv.major, volume.lv.minor)
    for holder in devices.holders(device):
        found.append(f"held by device {holder}")
    if volume.lv.open and not found:
        found.append("open by a process (see 'fuser -vm " + volume.device + "')")
    return found


def remove_volumes(
    ctx: Context, specs: list[str], force: bool = False, confirm: Confirm = lambda question: False
) -> list[Outcome]:
    """Remove volumes; one that does not exist is reported unchanged.

    A volume that is mounted (in any mount namespace) or open is refused
    with what holds it, unless ``force`` is set and ``confirm`` agrees: then
    it is unmounted here first. Snapshots of a removed volume stay.
    All volumes are checked before the first one is removed.
    """
    inventory = read_inventory(ctx)
    plan: list[tuple[str, Volume | None]] = []
    for spec in specs:
        volume = inventory.find_volume(spec)
        if volume is not None:
            holders = _holders_of(volume)
            if holders and not force:
                raise Conflict(
                    f"volume {volume.full_name} is in use: {'; '.join(holders)}",
                    "unmount it (lvmvol volume umount) and stop what uses it, "
                    "or pass --force to unmount and remove it",
                )
            if holders and not confirm(
                f"Volume {volume.full_name} is in use ({'; '.join(holders)}). "
                "Unmount and remove it?"
            ):
                raise Conflict(f"not removing {volume.full_name}: confirmation declined")
        plan.append((spec, volume))

    outcomes = []
    for spec, volume in plan:
        if volume is None:
            outcomes.append(Outcome(spec, False, notes=[f"volume {spec!r} does not exist"]))
            continue
        for entry in sorted(volume.mounts, key=lambda entry: len(entry.mountpoint), reverse=True):
            umount(ctx.runner, entry.mountpoint)
            _remove_empty_mountpoint(ctx, entry.mountpoint)
        try:
            lvm.remove_lv(ctx.runner, volume.vg, volume.name)
        except CommandError as error:
            error.hint = "something still holds the device; check 'fuser -vm " + volume.device + "'"
            raise
        outcomes.append(Outcome(volume.name, True, {"vg": volume.vg}))
    return outcomes
