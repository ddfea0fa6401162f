"""Growing a thin pool: more space in its VG (new devices, or a larger loop file), then larger data and metadata."""

from __future__ import annotations

import os

from lvmvol import devices, lvm, tags
from lvmvol.errors import InvalidInput, LvmvolError, NotFound
from lvmvol.ops.context import Context, Outcome
from lvmvol.ops.inventory import Pool, read_inventory
from lvmvol.ops.pools import Confirm, check_devices, metadata_size_for, usable_pv_bytes
from lvmvol.units import format_size, round_up


def extend_pool(
    ctx: Context,
    pool_spec: str | None,
    device_paths: list[str],
    amount: int | None = None,
    relative: bool = False,
    force: bool = False,
    confirm: Confirm = lambda question: False,
) -> Outcome:
    """Grow thin pool ``pool_spec`` to ``amount`` bytes of data (or by ``amount`` when ``relative``).

    ``device_paths`` are added to the pool's VG first, with the same checks
    as ``pool init``. Without devices, a loop-backed pool's file grows by
    what the new size needs. Without ``amount``, the pool takes all free
    space of its VG. Metadata grows with the data as ``pool init`` sizes
    it. A size the pool already has changes nothing; shrinking raises
    ``InvalidInput``.
    """
    pool = read_inventory(ctx).resolve_pool(pool_spec, ctx.config.pool)
    vg = _read_vg(ctx, pool.vg)
    extent = vg.extent_size
    loop_files = tags.setting_values(vg.tags, tags.LOOP_FILE)
    if device_paths and loop_files:
        raise InvalidInput(
            f"pool {pool.full_name} is backed by the file {loop_files[0]}",
            "omit DEVICE... and pass --size to grow the file",
        )
    members, additions, to_wipe, notes = check_devices(ctx, vg.name, device_paths, force, confirm, {})
    added = sum(usable_pv_bytes(devices.device_size(path), extent) for path in additions)
    free = vg.free + added

    current_data, current_metadata = pool.lv.size, pool.lv.metadata_size
    if amount is None:
        data = _largest_data_size(current_data, current_metadata, free, extent)
    else:
        data = round_up(current_data + amount if relative else amount, extent)
    if data < current_data:
        raise InvalidInput(
            f"pool {pool.full_name} has {format_size(current_data)} of data and cannot shrink to "
            f"{format_size(data)}",
            f"pass a size of at least {format_size(current_data)}",
        )
    metadata = max(current_metadata, metadata_size_for(data, extent))
    # The spare metadata LV grows with the metadata, so metadata growth counts twice.
    needed = (data - current_data) + 2 * (metadata - current_metadata)
    file_growth = 0
    if needed > free:
        if not loop_files:
            raise InvalidInput(
                f"growing pool {pool.full_name} to {format_size(data)} needs {format_size(needed)} "
                f"and volume group {vg.name} has {format_size(free)} free",
                "add a device (DEVICE...) or pass a smaller --size",
            )
        # One extent more than needed, because the PV's data area may not
        # end on an extent boundary of the file.
        file_growth = round_up(needed - free, extent) + extent
    details = {
        "vg": vg.name,
        "devices": members + additions,
        "previous_size_bytes": current_data,
        "size_bytes": data,
        "metadata_size_bytes": metadata,
    }

    changed = False
    for path in to_wipe:
        devices.wipe_signatures(ctx.runner, path)
    for path in additions:
        lvm.pvcreate(ctx.runner, path)
    if additions:
        lvm.vgextend(ctx.runner, vg.name, additions)
        changed = True
    if loop_files:
        changed = _grow_loop_file(ctx, loop_files[0], file_growth) or changed
        details["file"] = loop_files[0]
    if metadata > current_metadata:
        lvm.extend_pool_metadata(ctx.runner, pool.vg, pool.name, metadata)
        changed = True
    if data > current_data:
        lvm.extend_lv(ctx.runner, pool.vg, pool.name, data)
        changed = True

    if ctx.dry_run or not changed:
        return Outcome(pool.name, changed, details, notes)

    _verify(ctx, pool, data, metadata)
    return Outcome(pool.name, changed, details, notes)


def _read_vg(ctx: Context, name: str) -> lvm.VolumeGroup:
    for vg in lvm.list_vgs(ctx.runner):
        if vg.name == name:
            return vg
    raise NotFound(f"volume group {name} not found", "check 'vgs'")


def _largest_data_size(current_data: int, current_metadata: int, free: int, extent: int) -> int:
    """Return the largest data size for which data, metadata and spare growth fit in ``free``."""
    data = current_data + free
    while data > current_data:
        metadata = max(current_metadata, metadata_size_for(data, extent))
        if (data - current_data) + 2 * (metadata - current_metadata) <= free:
            return data
        data -= extent
    return current_data


def _grow_loop_file(ctx: Context, path: str, growth: int) -> bool:
    """Grow the backing file by ``growth`` bytes, then its loop device and PV; return whether the PV grew.

    A file that is already larger than its loop device (grown by hand) is
    taken up too, so an interrupted run finishes when run again.
    """
    attached = devices.loop_devices_of(ctx.runner, path)
    if not attached:
        raise NotFound(
            f"the backing file {path} of the pool is not attached to a loop device",
            "run 'lvmvol activate' first",
        )
    loop = attached[0]
    file_size = os.path.getsize(path)
    if growth and not ctx.dry_run:
        with open(path, "r+b") as handle:
            handle.truncate(file_size + growth)
        file_size += growth
    if not growth and (ctx.dry_run or devices.device_size(loop) >= file_size):
        return False

    devices.refresh_loop_size(ctx.runner, loop)
    lvm.pvresize(ctx.runner, loop)
    return True


def _verify(ctx: Context, pool: Pool, data: int, metadata: int) -> None:
    for lv in lvm.list_lvs(ctx.runner, pool.vg):
        if lv.name == pool.name:
            if lv.size != data or lv.metadata_size != metadata:
                raise LvmvolError(
                    f"pool {pool.full_name} has {lv.size} bytes of data and {lv.metadata_size} of "
                    f"metadata after lvextend, not {data} and {metadata}",
                    f"check 'lvs -a {pool.vg}'",
                )
            return
    raise NotFound(f"pool {pool.full_name} is missing after lvextend", f"check 'lvs -a {pool.vg}'")
