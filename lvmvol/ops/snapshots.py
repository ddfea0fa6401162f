"""Thin snapshots: instant, active, with a device node when the command returns."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from lvmvol import fs, lvm, tags
from lvmvol.errors import CommandTimeout, Conflict
from lvmvol.names import generate_snapshot_name, lv_device_path, validate_lv_name
from lvmvol.ops.capacity import check_pool_capacity
from lvmvol.ops.context import Context, Outcome, before_step, wait_for_device
from lvmvol.ops.inventory import Volume, check_name_free, read_inventory
from lvmvol.runner import DetachedProcess
from lvmvol.units import format_size

# Named steps for the test-only fault hook (``before_step``), in order.
# "lvcreate" runs while the filesystem of a mounted encrypted origin is frozen.
OPERATION = "snapshot"
STEPS = ("freeze", "lvcreate", "activate")

# Seconds the thaw guard waits beyond the two commands it covers (fsfreeze
# and lvcreate, each limited to command_timeout) before it thaws on its own.
THAW_GUARD_MARGIN = 30.0


def create_snapshot(
    ctx: Context,
    source_spec: str,
    name: str | None = None,
    read_only: bool = False,
    allow_overcommit: bool = False,
) -> Outcome:
    """Take a thin snapshot of a volume (or of another snapshot).

    The same name for the same source and permission again is a no-op; a
    snapshot of that name with the other permission raises ``Conflict``.
    ``read_only`` makes the LV itself read-only. The pool's capacity is
    checked first (see ``check_pool_capacity``). The snapshot is created
    with activation skip off, then activated if lvm2 left it inactive, and
    the call returns once its device node exists. A mounted filesystem is
    frozen for the instant of the snapshot, so the snapshot is clean
    without journal recovery: lvm2's suspend of the origin freezes a
    filesystem on a plain volume, and lvmvol runs fsfreeze around lvcreate
    for one on an encrypted volume's mapping.
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
    if source.restoring:
        raise Conflict(
            f"a restore of volume {source.full_name} is unfinished",
            "run the same 'lvmvol volume restore' again to finish it first",
        )
    name = name or generate_snapshot_name(source.name)
    validate_lv_name(name, source.vg, kind="snapshot")
    details = {"vg": source.vg, "origin": source.name, "pool": source.lv.pool, "read_only": read_only}
    notes = []

    existing = inventory.find_volume(f"{source.vg}/{name}")
    if existing is not None:
        _check_same_snapshot(existing, source, read_only)
        if existing.lv.active:
            return Outcome(name, False, details)
    else:
        check_name_free(inventory, source.vg, name)
        pool = inventory.pool_of(source)
        if pool is not None:
            note = check_pool_capacity(
                ctx, pool, source.lv.size, allow_overcommit,
                f"a snapshot of {source.name} ({format_size(source.lv.size)})",
            )
            if note:
                notes.append(note)

    if existing is None:
        # The snapshot inherits the origin's settings (filesystem, encryption),
        # which lvm2 does not copy from the origin's tags by itself. The boot
        # mountpoint stays with the origin: two volumes cannot mount there.
        boot_mount = (tags.PREFIX + tags.MOUNTPOINT + "=", tags.PREFIX + tags.MOUNT_OPTIONS + "=")
        inherited = [
            tag
            for tag in source.lv.tags
            if tag.startswith(tags.PREFIX) and tag != tags.INCOMPLETE and not tag.startswith(boot_mount)
        ]
        before_step(OPERATION, "freeze")
        with frozen_filesystem(ctx, source):
            before_step(OPERATION, "lvcreate")
            lvm.create_thin_snapshot(ctx.runner, source.vg, source.name, name, inherited, read_only)

    if ctx.dry_run:
        return Outcome(name, True, details, notes)

    # lvm2 waits for udev before it returns, so a missing node means lvm2
    # left the snapshot inactive (activation skip set by another tool or an
    # older lvm2); activate it, ignoring the flag.
    device = lv_device_path(source.vg, name)
    if not os.path.exists(device):
        before_step(OPERATION, "activate")
        lvm.activate(ctx.runner, source.vg, name)
    wait_for_device(ctx, device)
    return Outcome(name, True, {**details, "device": device}, notes)


def _check_same_snapshot(existing: Volume, source: Volume, read_only: bool) -> None:
    """Raise ``Conflict`` unless ``existing`` is a snapshot of ``source`` with the requested permission."""
    if existing.origin != source.name:
        raise Conflict(
            f"{existing.full_name} exists and is not a snapshot of {source.name}",
            "choose another snapshot name",
        )
    if existing.lv.read_only != read_only:
        actual = "read-only" if existing.lv.read_only else "writable"
        raise Conflict(
            f"snapshot {existing.full_name} exists and is {actual}",
            "choose another snapshot name, or repeat the command "
            + ("with --read-only" if existing.lv.read_only else "without --read-only"),
        )


@contextmanager
def frozen_filesystem(ctx: Context, volume: Volume) -> Iterator[None]:
    """Keep the filesystem of an encrypted, mounted ``volume`` frozen while the block runs.

    lvm2 suspends the thin LV for a snapshot, which freezes a filesystem
    that sits directly on it, but an encrypted volume's filesystem sits on
    the dm-crypt mapping above it. A thaw guard process (``fs.start_thaw_guard``)
    thaws the filesystem if lvmvol dies or hangs while it is frozen.
    Plain and unmounted volumes pass through without a freeze.
    """
    if not volume.encrypted or not volume.mounts:
        yield
        return
    # NOTE: only mounts in lvmvol's mount namespace are seen. A filesystem
    # mounted only in another namespace (a container's) is not frozen, so
    # its snapshot is crash-consistent but needs journal recovery on mount.
    mountpoint = volume.mounts[0].mountpoint
    guard_timeout = 2 * ctx.config.command_timeout + THAW_GUARD_MARGIN
    guard = fs.start_thaw_guard(ctx.runner, mountpoint, guard_timeout)
    # NOTE: if lvmvol and the guard are killed together (a whole cgroup or
    # process group), the filesystem stays frozen until someone runs
    # fsfreeze --unfreeze on it.

    try:
        fs.freeze(ctx.runner, mountpoint)
    except CommandTimeout:
        # fsfreeze may have frozen the filesystem before it was killed.
        _finish_guard(guard, thawed=False)
        raise
    except BaseException:
        _finish_guard(guard, thawed=True)
        raise

    try:
        yield
    finally:
        try:
            fs.thaw(ctx.runner, mountpoint)
        except BaseException:
            _finish_guard(guard, thawed=False)
            raise
        _finish_guard(guard, thawed=True)


def _finish_guard(guard: DetachedProcess | None, thawed: bool) -> None:
    """Release the thaw guard when the filesystem is thawed; otherwise let it thaw now."""
    if guard is not None:
        guard.finish(fs.THAW_GUARD_RELEASE if thawed else None)
