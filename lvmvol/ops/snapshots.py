"""Thin snapshots: instant, active, with a device node when the command returns."""

from __future__ import annotations

import os

from lvmvol import lvm, tags
from lvmvol.errors import Conflict
from lvmvol.names import generate_snapshot_name, lv_device_path, validate_lv_name
from lvmvol.ops.context import Context, Outcome, wait_for_device
from lvmvol.ops.inventory import check_name_free, read_inventory


def create_snapshot(ctx: Context, source_spec: str, name: str | None = None) -> Outcome:
    """Take a thin snapshot of a volume (or of another snapshot).

    The same name for the same source again is a no-op. The snapshot is
    created with activation skip off, then activated if lvm2 left it
    inactive, and the call returns once its device node exists. lvm2
    suspends the origin for the instant of the snapshot, which freezes a
    mounted filesystem, so the snapshot is crash-consistent.
    """
    if name is not None:
        validate_lv_name(name, kind="snapshot")

    inventory = read_inventory(ctx)
    source = inventory.volume(source_spec)
    if source.incomplete:
        raise Conflict(
            f"volume {source.full_name} was not finished",
            "run the 'lvmvol volume create' that made it again first",
        )
    if source.encrypting:
        raise Conflict(
            f"the encryption of volume {source.full_name} is unfinished",
            f"finish it with 'lvmvol volume encrypt {source.name}' first",
        )
    name = name or generate_snapshot_name(source.name)
    validate_lv_name(name, source.vg, kind="snapshot")
    details = {"vg": source.vg, "origin": source.name, "pool": source.lv.pool}

    existing = inventory.find_volume(f"{source.vg}/{name}")
    if existing is not None:
        if existing.origin != source.name:
            raise Conflict(
                f"{existing.full_name} exists and is not a snapshot of {source.name}",
                "choose another snapshot name",
            )
        if existing.lv.active:
            return Outcome(name, False, details)
    else:
        check_name_free(inventory, source.vg, name)
        # The snapshot inherits the origin's settings (filesystem, encryption),
        # which lvm2 does not copy from the origin's tags by itself.
        inherited = [
            tag for tag in source.lv.tags if tag.startswith(tags.PREFIX) and tag != tags.INCOMPLETE
        ]
        lvm.create_thin_snapshot(ctx.runner, source.vg, source.name, name, inherited)

    if ctx.dry_run:
        return Outcome(name, True, details)

    # lvm2 waits for udev before it returns, so a missing node means lvm2
    # left the snapshot inactive (activation skip set by another tool or an
    # older lvm2); activate it, ignoring the flag.
    device = lv_device_path(source.vg, name)
    if not os.path.exists(device):
        lvm.activate(ctx.runner, source.vg, name)
    wait_for_device(ctx, device)
    return Outcome(name, True, {**details, "device": device})
