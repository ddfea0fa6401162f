"""Growing a volume: the thin LV, then its LUKS mapping, then its filesystem, each checked after.

``lvextend`` alone leaves an open dm-crypt mapping and the filesystem at
their old sizes, so each layer is grown in turn and its size read back.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from lvmvol import crypt, devices, fs, lvm
from lvmvol.crypt import Key
from lvmvol.errors import Conflict, InvalidInput, LvmvolError
from lvmvol.mounts import mount, umount
from lvmvol.ops.capacity import check_pool_capacity
from lvmvol.ops.context import Context, Outcome
from lvmvol.ops.encryption import close_volume, open_volume, recorded_key
from lvmvol.ops.inventory import Volume, read_inventory
from lvmvol.ops.mounting import ensure_active
from lvmvol.units import format_size, round_up


@dataclass
class LayerSizes:
    """Sizes in bytes of a volume's layers; None for a layer it does not have."""

    lv: int
    mapping: int | None = None
    filesystem: int | None = None

    def to_dict(self) -> dict:
        return {
            "lv_bytes": self.lv,
            "mapping_bytes": self.mapping,
            "filesystem_bytes": self.filesystem,
        }


def resize_volume(
    ctx: Context,
    spec: str,
    amount: int,
    relative: bool,
    key: Key | None = None,
    allow_overcommit: bool = False,
) -> Outcome:
    """Grow volume ``spec`` to ``amount`` bytes (or by ``amount`` when ``relative``).

    The size is rounded up to whole extents; a size that rounds to the
    current one changes nothing. Shrinking raises ``InvalidInput``. An
    encrypted volume needs its key: ``key``, else the recorded key file.
    The pool's thresholds and over-commit ratio apply to the growth as to
    a new volume (see ``check_pool_capacity``), and ``allow_overcommit``
    lets it pass the ratio. Works while the volume is mounted; an unmounted
    one is mounted at a private directory for the filesystem grow, because
    xfs_growfs only grows a mounted filesystem. Raises ``LvmvolError`` when a layer does
    not have the expected size afterwards.
    """
    inventory = read_inventory(ctx)
    volume = inventory.volume(spec)
    _check_resizable(volume)
    current = volume.lv.size
    target = round_up(current + amount if relative else amount, volume.lv.extent_size)
    if target < current:
        raise InvalidInput(
            f"volume {volume.full_name} is {format_size(current)} and cannot shrink to "
            f"{format_size(target)}: shrinking a filesystem risks losing data",
            f"pass a size of at least {format_size(current)}",
        )
    if volume.encrypted:
        # Check the key before anything changes, so a missing key file changes nothing.
        key = recorded_key(volume, key)
    details = {"vg": volume.vg, "previous_size_bytes": current, "size_bytes": target}
    notes = []
    pool = inventory.pool_of(volume)
    if target > current and pool is not None:
        note = check_pool_capacity(
            ctx, pool, target - current, allow_overcommit,
            f"{format_size(target - current)} of growth for volume {volume.name}",
        )
        if note:
            notes.append(note)

    extended = False
    if target > current:
        lvm.extend_lv(ctx.runner, volume.vg, volume.name, target)
        extended = True
    elif ctx.dry_run or not volume.mounts:
        # NOTE: when the LV already has the requested size, the upper layers
        # of an unmounted volume are not checked, because that needs opening
        # and mounting it. A grow cut off after lvextend is finished by
        # mounting the volume and running the same resize again.
        return Outcome(volume.name, False, details, notes)

    grew = _grow_upper_layers(ctx, volume, key)
    if ctx.dry_run:
        return Outcome(volume.name, True, details, notes)

    sizes = grew.sizes
    sizes.lv = _read_lv_size(ctx, volume)
    _verify(volume, target, sizes, grew.luks_offset)
    details["layers"] = sizes.to_dict()
    return Outcome(volume.name, extended or grew.changed, details, notes)


def _check_resizable(volume: Volume) -> None:
    if volume.incomplete:
        raise Conflict(
            f"volume {volume.full_name} was not finished",
            "run the 'lvmvol volume create' that made it again first",
        )
    if volume.encrypting:
        raise Conflict(
            f"the encryption of volume {volume.full_name} is unfinished",
            f"finish it with 'lvmvol volume encrypt {volume.name}' first",
        )
    if volume.lv.read_only:
        raise InvalidInput(f"volume {volume.full_name} is read-only and cannot grow")


@dataclass
class _UpperLayers:
    sizes: LayerSizes
    changed: bool
    luks_offset: int


def _grow_upper_layers(ctx: Context, volume: Volume, key: Key | None) -> _UpperLayers:
    """Grow the mapping and the filesystem to fill the LV; return their sizes afterwards.

    A mapping this function opens and a private mount it makes are closed
    and removed again, also when a step fails.
    """
    device = ensure_active(ctx, volume)
    sizes = LayerSizes(lv=0)
    changed = False
    luks_offset = 0

    target = device
    opened_here = False
    if volume.encrypted:
        luks_offset = 0 if ctx.dry_run else _luks_data_offset(ctx, device)
        if volume.mapping_open:
            if ctx.dry_run or devices.device_size(volume.mapping_device) < devices.device_size(device) - luks_offset:
                crypt.resize_mapping(ctx.runner, volume.mapping, key)
                changed = True
        else:
            # A mapping opened now already spans the grown LV.
            open_volume(ctx, volume, device, key, None)
            opened_here = True
        target = volume.mapping_device
        if not ctx.dry_run:
            sizes.mapping = devices.device_size(target)

    private_dir = None
    try:
        if volume.filesystem != "none":
            mountpoint = volume.mountpoint
            if mountpoint is None:
                private_dir = tempfile.mkdtemp(prefix="lvmvol-resize-")
                options = fs.mount_options(volume.filesystem, read_only=False)
                mount(ctx.runner, target, private_dir, volume.filesystem, options)
                mountpoint = private_dir
            changed = _grow_filesystem(ctx, volume.filesystem, target, mountpoint, sizes) or changed
    finally:
        if private_dir is not None:
            umount(ctx.runner, private_dir)
            os.rmdir(private_dir)
        if opened_here:
            close_volume(ctx, read_inventory(ctx).volume(volume.full_name))
    return _UpperLayers(sizes, changed, luks_offset)


def _grow_filesystem(ctx: Context, fstype: str, device: str, mountpoint: str, sizes: LayerSizes) -> bool:
    """Grow the filesystem when it is smaller than its device; record its size in ``sizes``."""
    if ctx.dry_run:
        fs.grow_filesystem(ctx.runner, fstype, device, mountpoint)
        return True
    before = fs.filesystem_size(ctx.runner, fstype, device, mountpoint)
    if devices.device_size(device) - before < fs.GROW_SLACK[fstype]:
        sizes.filesystem = before
        return False
    fs.grow_filesystem(ctx.runner, fstype, device, mountpoint)
    sizes.filesystem = fs.filesystem_size(ctx.runner, fstype, device, mountpoint)
    return True


def _luks_data_offset(ctx: Context, device: str) -> int:
    """Return the byte offset at which the LUKS2 data segment starts on ``device``."""
    metadata = crypt.luks2_metadata(ctx.runner, device)
    return int(metadata["segments"]["0"]["offset"])


def _read_lv_size(ctx: Context, volume: Volume) -> int:
    for lv in lvm.list_lvs(ctx.runner, volume.vg):
        if lv.name == volume.name:
            return lv.size
    raise LvmvolError(f"volume {volume.full_name} is missing after lvextend", f"check 'lvs {volume.vg}'")


def _verify(volume: Volume, target: int, sizes: LayerSizes, luks_offset: int) -> None:
    """Raise ``LvmvolError`` naming the first layer that does not have the size it should."""
    if sizes.lv != target:
        raise LvmvolError(
            f"volume {volume.full_name} is {sizes.lv} bytes after lvextend, not {target}",
            f"check 'lvs {volume.full_name}' and run the resize again",
        )
    device_size = sizes.lv
    if volume.encrypted:
        if sizes.mapping != sizes.lv - luks_offset:
            raise LvmvolError(
                f"dm-crypt mapping {volume.mapping} is {sizes.mapping} bytes, not "
                f"{sizes.lv - luks_offset} (the LV minus the LUKS2 header)",
                f"run 'cryptsetup resize {volume.mapping}' with the volume's key",
            )
        device_size = sizes.mapping
    if sizes.filesystem is not None:
        slack = fs.GROW_SLACK[volume.filesystem]
        if not device_size - slack < sizes.filesystem <= device_size:
            raise LvmvolError(
                f"the {volume.filesystem} filesystem of volume {volume.full_name} spans "
                f"{sizes.filesystem} bytes of its {device_size}-byte device",
                "check 'dmesg' for the kernel's reason and run the resize again",
            )
