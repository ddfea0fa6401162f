"""Removing a thin pool: its volumes (with --force), the pool, and the VG and loop files lvmvol made.

A VG that ``pool init`` created carries the tag ``lvmvol.vg``. When its last
LV goes, ``pool rm`` removes the VG, wipes the PV labels with pvremove, and
detaches and deletes the loop files that the VG's ``lvmvol.loopfile`` tags
name. A VG without that tag was there before lvmvol and stays.
"""

from __future__ import annotations

import os
from typing import Callable

from lvmvol import devices, lvm, tags
from lvmvol.errors import Conflict
from lvmvol.names import validate_lv_name, validate_vg_name
from lvmvol.ops.context import Context, Outcome
from lvmvol.ops.inventory import read_inventory
from lvmvol.ops.removal import remove_volumes

Confirm = Callable[[str], bool]


def remove_pool(ctx: Context, spec: str, force: bool = False, confirm: Confirm = lambda question: False) -> Outcome:
    """Remove the thin pool ``spec`` (``VG/NAME`` or ``NAME``).

    A pool that holds volumes is refused unless ``force`` is set and
    ``confirm`` agrees; the volumes are then removed as ``volume rm --force``
    removes them. A pool that holds thin LVs lvmvol does not manage is
    always refused. A pool that no longer exists is reported unchanged,
    after finishing the VG clean-up that an interrupted run left.
    """
    vg_name, _, pool_name = spec.rpartition("/")
    if vg_name:
        validate_vg_name(vg_name)
    validate_lv_name(pool_name, kind="pool")
    inventory = read_inventory(ctx)
    matches = [pool for pool in inventory.pools if pool.name == pool_name and (not vg_name or pool.vg == vg_name)]
    if len(matches) > 1:
        inventory.resolve_pool(spec)  # raises the "ambiguous" error with the pools listed

    if not matches:
        details: dict = {}
        notes = [f"pool {spec!r} does not exist"]
        changed = False
        if vg_name:
            changed = _remove_vg_if_done(ctx, vg_name, details, notes)
        return Outcome(spec, changed, details, notes)
    pool = matches[0]

    in_pool = [lv for lv in inventory.all_lvs if lv.vg == pool.vg and lv.pool == pool.name]
    foreign = [lv.name for lv in in_pool if tags.VOLUME not in lv.tags]
    if foreign:
        raise Conflict(
            f"pool {pool.full_name} contains thin volumes that lvmvol does not manage: {', '.join(sorted(foreign))}",
            "remove them with lvremove first if they are no longer needed",
        )
    volumes = sorted(lv.name for lv in in_pool)
    if volumes and not force:
        raise Conflict(
            f"pool {pool.full_name} contains {len(volumes)} volume(s): {', '.join(volumes)}",
            "remove them with 'lvmvol volume rm', or pass --force --yes to remove them with the pool",
        )
    if volumes and not confirm(
        f"Remove pool {pool.full_name} and its {len(volumes)} volume(s) {', '.join(volumes)} with all their data?"
    ):
        raise Conflict(f"not removing pool {pool.full_name}: confirmation declined", "pass --yes to confirm in scripts")

    details = {"vg": pool.vg, "volumes_removed": volumes}
    notes: list[str] = []
    if volumes:
        remove_volumes(ctx, [f"{pool.vg}/{name}" for name in volumes], force=True, confirm=lambda question: True)

    lvm.remove_lv(ctx.runner, pool.vg, pool.name)

    _remove_vg_if_done(ctx, pool.vg, details, notes)
    return Outcome(pool.name, True, details, notes)


def _remove_vg_if_done(ctx: Context, vg_name: str, details: dict, notes: list[str]) -> bool:
    """Remove ``vg_name``, its PV labels and its loop files when lvmvol created it and it has no LVs.

    Returns whether anything changed. In a dry run the LVs that the run
    would have removed are still there, so the VG is kept.
    """
    vg = next((candidate for candidate in lvm.list_vgs(ctx.runner) if candidate.name == vg_name), None)
    if vg is None:
        return False
    if tags.VG_CREATED not in vg.tags:
        notes.append(f"volume group {vg_name} stays because lvmvol did not create it")
        return False
    listed = lvm.list_lvs(ctx.runner, vg_name, hidden=True)
    # lvm2's spare pool metadata LV belongs to the VG, not to any pool.
    spares = [lv for lv in listed if lv.name.strip("[]").endswith("_pmspare")]
    remaining = [lv for lv in listed if lv not in spares]
    if remaining and not ctx.dry_run:
        notes.append(
            f"volume group {vg_name} stays because it still holds {', '.join(sorted(lv.name for lv in remaining))}"
        )
        return False
    if ctx.dry_run and remaining:
        notes.append(f"volume group {vg_name} would be removed with its last LV")
        return False

    physical_volumes = [pv.name for pv in lvm.list_pvs(ctx.runner) if pv.vg == vg_name]
    loop_files = tags.setting_values(vg.tags, tags.LOOP_FILE)
    lvm.vgremove(ctx.runner, vg_name, with_spare=bool(spares))
    for device in physical_volumes:
        lvm.pvremove(ctx.runner, device)
    details["vg_removed"] = True
    details["physical_volumes"] = physical_volumes

    removed_files = []
    for path in loop_files:
        for device in devices.loop_devices_of(ctx.runner, path):
            devices.detach_loop(ctx.runner, device)
        if not ctx.dry_run and os.path.exists(path):
            os.unlink(path)
            removed_files.append(path)
    details["files_removed"] = removed_files
    return True

