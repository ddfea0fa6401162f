"""Removing volumes: refuse what is in use, close and erase encryption, then lvremove."""

from __future__ import annotations

import os
from typing import Callable

from lvmvol import crypt, devices, lvm
from lvmvol.errors import CommandError, Conflict
from lvmvol.mounts import mounts_in_other_namespaces
from lvmvol.names import lv_device_path
from lvmvol.ops.context import Context, Outcome, before_step, wait_for_device
from lvmvol.ops.encryption import close_volume, remove_unused_key_file
from lvmvol.ops.inventory import Inventory, Volume, read_inventory
from lvmvol.ops.mounting import unmount_all

Confirm = Callable[[str], bool]

# Named steps for the test-only fault hook (``before_step``), in order; the
# encryption steps run only for encrypted volumes.
OPERATION = "rm"
STEPS = ("unmount", "close", "erase", "key", "lvremove")


def holders_of(volume: Volume) -> list[str]:
    """Describe everything that holds ``volume``: mounts anywhere, stacked devices, open files.

    lvmvol's own dm-crypt mapping does not count, because removal closes it;
    a process that keeps the mapping open makes that close fail, which
    stops the removal with the mapping named.
    """
    found = [f"mounted at {entry.mountpoint}" for entry in volume.mounts]
    if volume.lv.major is None or volume.lv.minor is None:
        return found
    checked = [devices.BlockDevice(volume.device, volume.lv.major, volume.lv.minor)]
    own_mapping = None
    if volume.mapping_open:
        mapping = devices.block_device(volume.mapping_device)
        own_mapping = os.path.basename(os.path.realpath(volume.mapping_device))
        checked.append(mapping)

    for device in checked:
        for pid, mountpoint in mounts_in_other_namespaces(device.major, device.minor):
            found.append(f"mounted at {mountpoint} in the mount namespace of process {pid}")
        for holder in devices.holders(device):
            if holder != own_mapping:
                found.append(f"held by device {holder}")
    if volume.lv.open and own_mapping is None and not found:
        found.append(f"open by a process (see 'fuser -vm {volume.device}')")
    return found


def after_udev_probes(ctx: Context, inventory: Inventory, volumes: list[Volume]) -> Inventory:
    """Return ``inventory``, read again once udev is idle if one of ``volumes`` is open with nothing visible using it.

    udev runs blkid on a device when a program that wrote to it closes it,
    so for a moment after a dd or mkfs exits, lvs can report the LV open.
    Reading again after ``udevadm settle`` keeps that probe from being
    reported as "open by a process". Volumes mounted or with an open mapping
    are not probes, so they cost nothing here.
    """
    if not any(volume.lv.open and not volume.mapping_open and not volume.mounts for volume in volumes):
        return inventory
    devices.settle_udev(ctx.runner, ctx.config.device_timeout)
    return read_inventory(ctx)


def users_of(volume: Volume) -> list[str]:
    """Describe what uses ``volume``: its holders and an open dm-crypt mapping of its own."""
    found = holders_of(volume)
    if volume.mapping_open:
        found.append(f"its dm-crypt mapping {volume.mapping} is open")
    return found


def remove_volumes(
    ctx: Context, specs: list[str], force: bool = False, confirm: Confirm = lambda question: False
) -> list[Outcome]:
    """Remove volumes; one that does not exist is reported unchanged.

    A volume that is mounted (in any mount namespace) or open is refused
    with what holds it, unless ``force`` is set and ``confirm`` agrees: then
    it is unmounted here first. An encrypted volume's mapping is closed and
    its LUKS key slots erased before lvremove. Snapshots of a removed volume
    stay. All volumes are checked before the first one is removed.
    """
    inventory = read_inventory(ctx)
    found = [inventory.find_volume(spec) for spec in specs]
    inventory = after_udev_probes(ctx, inventory, [volume for volume in found if volume is not None])
    plan: list[tuple[str, Volume | None]] = []
    for spec in specs:
        volume = inventory.find_volume(spec)
        if volume is not None:
            _check_removable(volume, force, confirm)
        plan.append((spec, volume))

    outcomes = []
    removed: set[str] = set()
    for spec, volume in plan:
        if volume is None:
            outcomes.append(Outcome(spec, False, notes=[f"volume {spec!r} does not exist"]))
            continue
        outcomes.append(_remove_one(ctx, inventory, volume, removed))
        removed.add(volume.full_name)
    return outcomes


def _check_removable(volume: Volume, force: bool, confirm: Confirm) -> None:
    holders = holders_of(volume)
    if not holders:
        return
    if not force:
        raise Conflict(
            f"volume {volume.full_name} is in use: {'; '.join(holders)}",
            "unmount it (lvmvol volume umount) and stop what uses it, "
            "or pass --force to unmount and remove it",
        )
    if not confirm(f"Volume {volume.full_name} is in use ({'; '.join(holders)}). Unmount and remove it?"):
        raise Conflict(f"not removing {volume.full_name}: confirmation declined")


def _remove_one(ctx: Context, inventory: Inventory, volume: Volume, removed: set[str]) -> Outcome:
    before_step(OPERATION, "unmount")
    unmount_all(ctx, volume.mounts)
    details: dict = {"vg": volume.vg}
    if volume.encrypted:
        before_step(OPERATION, "close")
        close_volume(ctx, volume)
        device = lv_device_path(volume.vg, volume.name)
        if not volume.lv.active:
            lvm.activate(ctx.runner, volume.vg, volume.name)
            wait_for_device(ctx, device)
        # Erasing the key slots makes the volume's blocks undecryptable even
        # where the thin pool later hands them to another volume.
        if ctx.dry_run or crypt.is_luks(ctx.runner, device):
            before_step(OPERATION, "erase")
            crypt.erase(ctx.runner, device)
            details["key_slots_erased"] = True

    # The generated key goes before the LV: its key slots are erased, so the
    # key opens nothing any more, and a run killed after lvremove would find
    # no volume that names the file.
    if volume.encrypted and volume.key_generated:
        before_step(OPERATION, "key")
        details["key_file_removed"] = remove_unused_key_file(ctx, inventory, volume, removed)

    before_step(OPERATION, "lvremove")
    try:
        lvm.remove_lv(ctx.runner, volume.vg, volume.name)
    except CommandError as error:
        error.hint = f"something still holds the device; check 'fuser -vm {volume.device}'"
        raise
    return Outcome(volume.name, True, details)
