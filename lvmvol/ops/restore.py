"""Restoring a volume from one of its snapshots: the origin's name gets the snapshot's content.

lvm2 merges a thin snapshot into its origin (``lvconvert --merge``) in one
metadata commit: the origin's name, LV UUID, tags and creation time pass to
the snapshot's thin device, and the origin's old thin device is removed.
So the origin's name refers to the old content before that commit and to
the snapshot's content after it, and never to nothing.

The LV tags are the journal. The steps, by the names the fault hook
(``LVMVOL_FAULT_BEFORE=restore:STEP``) uses:

``mark``
    tag the origin with the snapshot's name (``lvmvol.restorefrom``), its
    own thin device id (``lvmvol.restorethin``) and the snapshot's content
    settings (``lvmvol.restore.fs=...``, key source, encryption)
``copy``
    with ``--keep-snapshot``: take an inactive thin snapshot of the
    snapshot, ``SNAPSHOT+keep``, with the snapshot's tags and
    ``lvmvol.restorecopy=ORIGIN``
``deactivate``
    deactivate origin and snapshot, because lvm2 delays the merge of an
    open LV to its next activation
``merge``
    ``lvconvert --merge`` the snapshot into the origin
``rename``
    with ``--keep-snapshot``: the copy takes the snapshot's name
``activate``
    activate the origin (and the kept snapshot) and wait for the nodes
``finish``
    give the origin the snapshot's content settings and remove the journal tags

A run that finds the journal continues: the merge has happened when the
origin's thin device id differs from the recorded one.
"""

from __future__ import annotations

from lvmvol import lvm, tags
from lvmvol.errors import Conflict, InvalidInput, NotFound
from lvmvol.names import RESTORE_COPY_SUFFIX, lv_device_path, restore_copy_name
from lvmvol.ops.context import Context, Outcome, before_step, wait_for_device
from lvmvol.ops.inventory import Inventory, Volume, read_inventory
from lvmvol.ops.removal import after_udev_probes, users_of

OPERATION = "restore"
STEPS = ("mark", "copy", "deactivate", "merge", "rename", "activate", "finish")

_JOURNAL_KEYS = (tags.RESTORE_FROM, tags.RESTORE_THIN_ID, tags.RESTORE_COPY)


def restore_volume(ctx: Context, spec: str, keep_snapshot: bool = False) -> Outcome:
    """Give the origin of snapshot ``spec`` the snapshot's content; finish an interrupted restore.

    The snapshot is consumed unless ``keep_snapshot``; then a copy with the
    same name, content and tags replaces it. Raises ``Conflict`` and changes
    nothing while the origin or the snapshot is mounted, open or held, and
    ``NotFound`` when neither the snapshot nor an unfinished restore from it
    exists.
    """
    inventory = read_inventory(ctx)
    origin = _journal_origin(inventory, spec)
    resumed = origin is not None
    notes: list[str] = []
    if origin is None:
        snapshot = inventory.volume(spec)
        origin = _origin_of(inventory, snapshot)
        inventory = after_udev_probes(ctx, inventory, [origin, snapshot])
        snapshot = inventory.volume(snapshot.full_name)
        origin = _origin_of(inventory, snapshot)
        _check_restorable(origin, snapshot)
        snapshot_name = snapshot.name
        copy_name = _copy_name(origin.vg, snapshot_name, keep_snapshot)
        mark = _mark_tags(origin, snapshot)
        notes = _restore_notes(inventory, origin, snapshot)

        before_step(OPERATION, "mark")
        lvm.change_tags(ctx.runner, origin.vg, origin.name, add=mark, remove=[])
        recorded_thin_id = origin.lv.thin_id
    else:
        snapshot_name = origin.restoring_from
        copy_name = _copy_name(origin.vg, snapshot_name, keep_snapshot)
        snapshot = inventory.find_volume(f"{origin.vg}/{snapshot_name}")
        recorded_thin_id = _recorded_thin_id(origin)
    vg = origin.vg
    details = {"vg": vg, "origin": origin.name, "snapshot": snapshot_name, "resumed": resumed}

    merged = origin.lv.thin_id != recorded_thin_id
    if not merged:
        if resumed:
            snapshot = _snapshot_for_resume(ctx, inventory, origin, snapshot)
        if keep_snapshot:
            _make_copy(ctx, inventory, origin, snapshot, copy_name)
        else:
            _remove_copy(ctx, inventory, vg, copy_name, origin.name)

        before_step(OPERATION, "deactivate")
        for volume in (origin, snapshot):
            if volume.lv.active:
                lvm.deactivate(ctx.runner, vg, volume.name)

        before_step(OPERATION, "merge")
        lvm.merge_thin_snapshot(ctx.runner, vg, snapshot.name)
        if ctx.dry_run:
            return Outcome(origin.name, True, details, notes)
        inventory = read_inventory(ctx)
        origin = inventory.volume(f"{vg}/{origin.name}")
        _check_merged(origin, recorded_thin_id, snapshot.name)

    kept = _keep_or_drop_copy(ctx, inventory, origin, snapshot_name, copy_name, keep_snapshot, notes)

    before_step(OPERATION, "activate")
    for name in [origin.name] + ([snapshot_name] if kept else []):
        device = lv_device_path(vg, name)
        lvm.activate(ctx.runner, vg, name)
        wait_for_device(ctx, device)

    before_step(OPERATION, "finish")
    inventory = read_inventory(ctx)
    if kept:
        kept_snapshot = inventory.volume(f"{vg}/{snapshot_name}")
        journal = [tag for tag in kept_snapshot.lv.tags if tags.setting_key(tag) in _JOURNAL_KEYS]
        if journal:
            lvm.change_tags(ctx.runner, vg, snapshot_name, add=[], remove=journal)
    origin = inventory.volume(f"{vg}/{origin.name}")
    add, remove = _finished_tags(origin)
    if add or remove:
        lvm.change_tags(ctx.runner, vg, origin.name, add=add, remove=remove)

    details.update({"snapshot_kept": kept, "device": lv_device_path(vg, origin.name)})
    return Outcome(origin.name, True, details, notes)


def _copy_name(vg: str, snapshot_name: str, keep_snapshot: bool) -> str:
    """Return the name of the snapshot's copy; checked only when this run makes one."""
    if keep_snapshot:
        return restore_copy_name(vg, snapshot_name)
    return snapshot_name + RESTORE_COPY_SUFFIX


def _journal_origin(inventory: Inventory, spec: str) -> Volume | None:
    """Return the volume whose journal names snapshot ``spec`` as the source of an unfinished restore."""
    vg, _, name = spec.rpartition("/")
    found = [
        volume
        for volume in inventory.volumes
        if volume.restoring_from == name and (not vg or volume.vg == vg)
    ]
    if len(found) > 1:
        names = ", ".join(volume.full_name for volume in found)
        raise InvalidInput(f"unfinished restores from {name!r} exist for {names}", "pass the snapshot as VG/NAME")
    return found[0] if found else None


def _origin_of(inventory: Inventory, snapshot: Volume) -> Volume:
    """Return the origin of ``snapshot``; raise when it has none that lvmvol manages."""
    if snapshot.restore_copy_of is not None:
        raise Conflict(
            f"{snapshot.full_name} is the copy that an unfinished restore of "
            f"{snapshot.restore_copy_of} made of its snapshot",
            f"finish that restore with 'lvmvol volume restore {snapshot.name.removesuffix(RESTORE_COPY_SUFFIX)} "
            "--keep-snapshot'",
        )
    if snapshot.origin is None:
        raise InvalidInput(
            f"volume {snapshot.full_name} is not a snapshot, or its origin was removed, so there is nothing to restore",
            "pass a snapshot that 'lvmvol volume ls' shows with an origin",
        )
    origin = inventory.find_volume(f"{snapshot.vg}/{snapshot.origin}")
    if origin is None:
        raise Conflict(
            f"the origin {snapshot.vg}/{snapshot.origin} of snapshot {snapshot.name} is not managed by lvmvol",
            f"restore it with lvm2 itself ('lvconvert --merge {snapshot.full_name}')",
        )
    if origin.restoring_from is not None:
        raise Conflict(
            f"a restore of {origin.full_name} from snapshot {origin.restoring_from} is unfinished",
            f"finish it first with 'lvmvol volume restore {origin.vg}/{origin.restoring_from}'",
        )
    return origin


def _check_restorable(origin: Volume, snapshot: Volume) -> None:
    """Raise ``Conflict`` when the snapshot is unfinished or either volume is in use."""
    if snapshot.incomplete or snapshot.encrypting:
        raise Conflict(
            f"snapshot {snapshot.full_name} is unfinished ({'incomplete' if snapshot.incomplete else 'encrypting'})",
            "finish or remove it first",
        )
    for role, volume in (("volume", origin), ("snapshot", snapshot)):
        users = users_of(volume)
        if users:
            raise Conflict(
                f"{role} {volume.full_name} is in use: {'; '.join(users)}",
                f"a restore needs origin and snapshot unused; unmount with 'lvmvol volume umount {volume.name}' "
                "and stop what uses it",
            )


def _restore_notes(inventory: Inventory, origin: Volume, snapshot: Volume) -> list[str]:
    notes = []
    others = [child.name for child in inventory.children(origin) if child.name != snapshot.name]
    if others:
        notes.append(
            f"snapshots {', '.join(others)} keep the content {origin.name} had before the restore "
            "and no longer have an origin"
        )
    if origin.key_source != snapshot.key_source:
        notes.append(
            f"the restored {origin.name} opens with the key of the snapshot ({snapshot.key_source or 'none: not encrypted'}), "
            f"not with {origin.key_source or 'none'}"
        )
    return notes


def _mark_tags(origin: Volume, snapshot: Volume) -> list[str]:
    """Return the journal tags for the origin: snapshot name, thin device id, the snapshot's content settings."""
    if origin.lv.thin_id is None:
        raise Conflict(
            f"lvm2 reports no thin device id for {origin.full_name}",
            "check that it is a thin volume with 'lvs -o name,segtype,thin_id'",
        )
    pending = [
        tags.PREFIX + tags.RESTORE_SETTING_PREFIX + tag[len(tags.PREFIX):]
        for tag in snapshot.lv.tags
        if tags.setting_key(tag) in tags.CONTENT_SETTINGS
    ]
    return [
        tags.setting_tag(tags.RESTORE_FROM, snapshot.name),
        tags.setting_tag(tags.RESTORE_THIN_ID, str(origin.lv.thin_id)),
        *pending,
    ]


def _recorded_thin_id(origin: Volume) -> int:
    value = origin.settings.get(tags.RESTORE_THIN_ID, "")
    if not value.isdigit():
        raise Conflict(
            f"volume {origin.full_name} has an invalid {tags.PREFIX}{tags.RESTORE_THIN_ID} tag",
            "check its tags with 'lvs -o lv_tags'",
        )
    return int(value)


def _snapshot_for_resume(ctx: Context, inventory: Inventory, origin: Volume, snapshot: Volume | None) -> Volume:
    """Return the snapshot of a restore that stopped before the merge, checked again.

    When the snapshot is gone, the restore cannot go on: the journal is
    removed, the origin keeps its old content, and ``NotFound`` is raised.
    """
    if snapshot is None or snapshot.origin != origin.name:
        copy_name = origin.restoring_from + RESTORE_COPY_SUFFIX
        _remove_copy(ctx, inventory, origin.vg, copy_name, origin.name)
        add, remove = _finished_tags(origin, restored=False)
        lvm.change_tags(ctx.runner, origin.vg, origin.name, add=add, remove=remove)
        raise NotFound(
            f"snapshot {origin.vg}/{origin.restoring_from} is gone, so the unfinished restore of {origin.name} "
            f"was abandoned; {origin.name} keeps its content from before",
        )
    _check_restorable(origin, snapshot)
    return snapshot


def _make_copy(ctx: Context, inventory: Inventory, origin: Volume, snapshot: Volume, copy_name: str) -> None:
    """Take the inactive copy of the snapshot that replaces it after the merge, unless it exists."""
    existing = inventory.find_lv(origin.vg, copy_name)
    if existing is not None:
        _check_own_copy(existing, origin.name)
        return
    copied = [
        tag
        for tag in snapshot.lv.tags
        if tag.startswith(tags.PREFIX) and tag != tags.INCOMPLETE and tags.setting_key(tag) not in _JOURNAL_KEYS
    ]
    before_step(OPERATION, "copy")
    lvm.create_thin_snapshot(
        ctx.runner,
        origin.vg,
        snapshot.name,
        copy_name,
        [*copied, tags.setting_tag(tags.RESTORE_COPY, origin.name)],
        active=False,
    )


def _check_own_copy(lv: lvm.LogicalVolume, origin_name: str) -> None:
    if tags.parse_settings(lv.tags).get(tags.RESTORE_COPY) != origin_name:
        raise Conflict(
            f"an LV named {lv.full_name} exists and is not the copy a restore of {origin_name} made",
            f"rename or remove it; a restore with --keep-snapshot uses that name for a while",
        )


def _remove_copy(ctx: Context, inventory: Inventory, vg: str, copy_name: str, origin_name: str) -> bool:
    """Remove the copy an earlier run with --keep-snapshot made; return whether there was one."""
    existing = inventory.find_lv(vg, copy_name)
    if existing is None or tags.parse_settings(existing.tags).get(tags.RESTORE_COPY) != origin_name:
        return False
    lvm.remove_lv(ctx.runner, vg, copy_name)
    return True


def _check_merged(origin: Volume, recorded_thin_id: int, snapshot_name: str) -> None:
    """Raise ``Conflict`` when lvm2 delayed the merge because an LV was opened after the checks."""
    if origin.lv.thin_id != recorded_thin_id:
        return
    # NOTE: lvm2 then finishes the merge when the origin is next activated;
    # a run after that finds the new thin device id and continues.
    raise Conflict(
        f"lvm2 delayed the merge of snapshot {snapshot_name} into {origin.full_name}, "
        "because one of them was opened during the restore",
        f"stop what uses them, run 'lvchange --activate n {origin.full_name}' and "
        f"'lvchange --activate y {origin.full_name}', then run the same restore again",
    )


def _keep_or_drop_copy(
    ctx: Context,
    inventory: Inventory,
    origin: Volume,
    snapshot_name: str,
    copy_name: str,
    keep: bool,
    notes: list[str],
) -> bool:
    """After the merge, give the copy the snapshot's name, or remove it without --keep-snapshot.

    Returns whether a snapshot of that name is kept.
    """
    vg = origin.vg
    copy = inventory.find_lv(vg, copy_name)
    renamed = inventory.find_volume(f"{vg}/{snapshot_name}")
    if copy is not None:
        _check_own_copy(copy, origin.name)
    if keep:
        if copy is not None:
            if renamed is not None:
                raise Conflict(
                    f"{vg}/{snapshot_name} exists again, so the kept copy {copy_name} cannot take its name",
                    f"rename or remove {vg}/{snapshot_name}, then run the same restore again",
                )
            before_step(OPERATION, "rename")
            lvm.rename_lv(ctx.runner, vg, copy_name, snapshot_name)
            return True
        # Renamed by an earlier run. Its journal tag may be gone already,
        # but the kept copy is a snapshot of the restored origin.
        if renamed is not None and renamed.origin == origin.name:
            return True
        notes.append(f"snapshot {snapshot_name} was consumed by the interrupted run, so it could not be kept")
        return False
    _remove_copy(ctx, inventory, vg, copy_name, origin.name)
    return False


def _finished_tags(origin: Volume, restored: bool = True) -> tuple[list[str], list[str]]:
    """Return the tags to add and remove so ``origin`` carries no journal.

    With ``restored``, its content settings become the ones recorded from
    the snapshot; otherwise they stay.
    """
    pending = [
        tags.PREFIX + tag[len(tags.PREFIX + tags.RESTORE_SETTING_PREFIX):]
        for tag in origin.lv.tags
        if tag.startswith(tags.PREFIX + tags.RESTORE_SETTING_PREFIX)
    ]
    journal = [
        tag
        for tag in origin.lv.tags
        if tags.setting_key(tag) in _JOURNAL_KEYS or tag.startswith(tags.PREFIX + tags.RESTORE_SETTING_PREFIX)
    ]
    if not restored:
        return [], journal
    stale = [
        tag
        for tag in origin.lv.tags
        if (tags.setting_key(tag) in tags.CONTENT_SETTINGS or tag == tags.INCOMPLETE) and tag not in pending
    ]
    add = [tag for tag in pending if tag not in origin.lv.tags]
    return add, journal + stale
