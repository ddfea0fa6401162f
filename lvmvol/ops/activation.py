"""Bringing everything lvmvol manages back after a boot.

The steps, each repeatable: attach loop-backed pools' files, activate thin
pools, activate volumes, then open and mount the volumes that carry a boot
mountpoint (``volume mount --persist``). A step that fails for one pool or
volume is recorded and the others go on. Encrypted volumes without a boot
mountpoint stay closed, as after ``volume umount``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from lvmvol import devices, lvm, tags
from lvmvol.errors import LvmvolError
from lvmvol.ops.context import Context
from lvmvol.ops.inventory import read_inventory
from lvmvol.ops.mounting import mount_volume
from lvmvol.ops.pools import recorded_loop_files


@dataclass
class Item:
    """The activation result of one loop file, pool or volume."""

    kind: str  # "loop_file", "pool" or "volume"
    name: str
    ok: bool
    changed: bool = False
    # For a loop file its loop device, for a volume its mountpoint.
    detail: str | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "ok": self.ok,
            "changed": self.changed,
            "detail": self.detail,
            "error": self.error,
        }


@dataclass
class ActivationReport:
    items: list[Item] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(item.changed for item in self.items)

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    def to_dict(self) -> dict:
        return {
            "changed": self.changed,
            "ok": self.ok,
            "items": [item.to_dict() for item in self.items],
        }


def activate_all(ctx: Context) -> ActivationReport:
    """Attach, activate and mount everything lvmvol manages; a failed item is recorded, not raised.

    Returns a report with one item per loop file, pool and volume. Only an
    error that stops every step, such as lvs itself failing, is raised.
    """
    report = ActivationReport()
    _attach_loop_files(ctx, report)

    inventory = read_inventory(ctx)
    failed_pools = {}
    for pool in inventory.pools:
        item = Item("pool", pool.full_name, ok=True)
        if not pool.lv.active:
            try:
                lvm.activate(ctx.runner, pool.vg, pool.name)
                item.changed = True
            except LvmvolError as error:
                item.ok = False
                item.error = str(error)
                failed_pools[(pool.vg, pool.name)] = item.error
        report.items.append(item)

    volume_items = {}
    for volume in inventory.volumes:
        item = Item("volume", volume.full_name, ok=True)
        volume_items[volume.full_name] = item
        report.items.append(item)
        pool_error = failed_pools.get((volume.vg, volume.lv.pool))
        if pool_error is not None:
            item.ok = False
            item.error = f"its pool {volume.vg}/{volume.lv.pool} is not active"
            continue
        if volume.lv.active:
            continue
        try:
            lvm.activate(ctx.runner, volume.vg, volume.name)
            item.changed = True
        except LvmvolError as error:
            item.ok = False
            item.error = str(error)

    for volume in read_inventory(ctx).volumes:
        item = volume_items.get(volume.full_name)
        mountpoint = volume.persistent_mountpoint
        if item is None or not item.ok or mountpoint is None:
            continue
        item.detail = mountpoint
        try:
            outcome = mount_volume(
                ctx, volume.full_name, mountpoint, options=volume.persistent_mount_options or None
            )
            item.changed = item.changed or outcome.changed
        except LvmvolError as error:
            item.ok = False
            item.error = str(error)
    return report


def _attach_loop_files(ctx: Context, report: ActivationReport) -> None:
    """Attach each known backing file that has no loop device yet, then let udev catch up.

    Files come from ``loop_file_list`` and from the ``lvmvol.loopfile`` tags
    of the VGs lvm2 already sees.
    """
    paths = list(recorded_loop_files(ctx))
    for vg in lvm.list_vgs(ctx.runner):
        for path in tags.setting_values(vg.tags, tags.LOOP_FILE):
            if path not in paths:
                paths.append(path)

    attached_any = False
    for path in paths:
        item = Item("loop_file", path, ok=True)
        report.items.append(item)
        if not os.path.isfile(path):
            item.ok = False
            item.error = f"backing file {path} of a loop-backed pool not found"
            continue
        try:
            attached = devices.loop_devices_of(ctx.runner, path)
            if attached:
                item.detail = attached[0]
                continue
            item.detail = devices.attach_loop(ctx.runner, path)
            item.changed = attached_any = True
        except LvmvolError as error:
            item.ok = False
            item.error = str(error)
    if attached_any and not ctx.dry_run:
        # lvm2 finds PVs through udev's device list, so the new loop
        # devices must be through udev before the next lvs.
        devices.settle_udev(ctx.runner, ctx.config.device_timeout)
