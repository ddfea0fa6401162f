"""Thin pools: initialising them on devices or loop-backed files, and listing them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from lvmvol import devices, lvm, lvm_filter, tags
from lvmvol.errors import Conflict, InvalidInput, NotFound
from lvmvol.mounts import mounts_of, read_mount_table
from lvmvol.names import validate_pool_name, validate_vg_name
from lvmvol.ops import pool_health
from lvmvol.ops.context import Context, Outcome, before_step
from lvmvol.ops.inventory import Pool, read_inventory
from lvmvol.units import format_size, parse_percent, parse_size, round_up

MiB = 1024 * 1024
GiB = 1024 * MiB

# Metadata sizing: lvm2 needs about 64 bytes of thin-pool metadata per data
# chunk (64 KiB chunks by default), so 1/1024 of the data size; lvmvol
# reserves twice that for snapshots, which share chunks but add mappings.
METADATA_MIN = 4 * MiB
METADATA_MAX = 15 * GiB

# Where lvm2 2.03 starts a new PV's data area by default (pe_start).
PV_DATA_OFFSET = 1 * MiB

# A loop-backed pool needs room for lvm2's metadata area, the pool's data and
# metadata, and the spare metadata LV.
MIN_FILE_SIZE = 64 * MiB

Confirm = Callable[[str], bool]

# Named steps for the test-only fault hook (``before_step``), in order;
# "file" and "attach" run only for a loop-backed pool, "wipe" only with --force.
OPERATION = "pool-init"
STEPS = ("file", "attach", "wipe", "pvcreate", "vgcreate", "lvcreate", "monitor")


@dataclass(frozen=True)
class PoolSize:
    """The requested data size of a pool: bytes, or a percentage of the VG's size."""

    size: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> "PoolSize":
        if text is None:
            return cls()
        percent = parse_percent(text)
        if percent is not None:
            return cls(percent=percent)
        return cls(size=parse_size(text))


def metadata_size_for(data_size: int, extent_size: int) -> int:
    """Return the thin-pool metadata size lvmvol asks for, rounded up to extents."""
    wanted = min(max(data_size // 512, METADATA_MIN), METADATA_MAX)
    return round_up(wanted, extent_size)


def _device_problems(ctx: Context, device: devices.BlockDevice) -> list[str]:
    """Return the reasons why ``device`` or one of its partitions is in use."""
    in_use = []
    table = read_mount_table()
    for candidate in [device, *devices.partitions(device)]:
        for entry in mounts_of(table, candidate.major, candidate.minor):
            in_use.append(f"{candidate.path} is mounted at {entry.mountpoint}")
        if devices.is_swap(candidate):
            in_use.append(f"{candidate.path} is an active swap area")
        held_by = devices.holders(candidate)
        if held_by:
            in_use.append(f"{candidate.path} is held open by {', '.join(held_by)}")
        openers = devices.dm_open_count(ctx.runner, candidate)
        if openers:
            in_use.append(f"{candidate.path} is open {openers} time(s) (dmsetup info)")
        if not in_use:
            busy = devices.exclusive_open_error(candidate.path)
            if busy:
                in_use.append(busy)
    return in_use


def _signatures_on(ctx: Context, device: devices.BlockDevice) -> list[str]:
    """Describe every signature on ``device`` and its partitions, as ``wipefs --no-act`` lists them.

    A LUKS2 secondary header that an old wipefs left behind is listed too.
    """
    found = []
    for candidate in [device, *devices.partitions(device)]:
        found += [signature.describe() for signature in devices.list_signatures(ctx.runner, candidate.path)]
    for header in devices.find_luks_headers(device.path):
        if header.secondary:
            found.append(f"{header.describe()} on {device.path}")
    return found


def check_devices(
    ctx: Context,
    vg: str,
    paths: list[str],
    force: bool,
    confirm: Confirm,
    known_empty: dict[str, int],
) -> tuple[list[str], list[str], list[str], list[str]]:
    """Classify devices for ``pool init`` and ``pool extend``.

    Returns (devices already in ``vg``, devices to add to it, devices to wipe
    first, notes). Raises ``Conflict`` for a device in another VG, in use,
    rejected by lvm2's device filter, or holding a signature without
    ``--force`` and confirmation.
    """
    physical_volumes = {os.path.realpath(pv.name): pv for pv in lvm.list_pvs(ctx.runner)}
    members, additions, to_wipe, notes = [], [], [], []
    for path in paths:
        if path in known_empty:
            additions.append(path)
            continue
        device = devices.block_device(path)
        pv = physical_volumes.get(os.path.realpath(path))
        if pv is not None and pv.vg == vg:
            members.append(path)
            continue
        if pv is not None and pv.vg:
            raise Conflict(
                f"device {path} is a physical volume of volume group {pv.vg!r}",
                f"pass --vg {pv.vg} to add a pool there, or choose another device",
            )

        in_use = _device_problems(ctx, device)
        if in_use:
            raise Conflict(f"device {path} is in use: {'; '.join(in_use)}", "choose another device")
        admission = lvm_filter.check_device(ctx.runner, devices.device_aliases(device))
        if admission.rejection is not None:
            raise Conflict(
                f"lvm2 ignores device {path}: {admission.rejection.key} rejects it with "
                f"{admission.rejection.pattern!r}",
                "change that setting in lvm.conf (see 'lvmconfig devices') or choose another device",
            )
        note = admission.note(path)
        if note:
            notes.append(note)
        if pv is not None:
            additions.append(path)
            continue

        found = _signatures_on(ctx, device)
        if found:
            description = "; ".join(found)
            if not force:
                raise Conflict(
                    f"device {path} contains signatures: {description}",
                    "make sure it holds nothing you need, then pass --force --yes to wipe them",
                )
            if not confirm(f"Wipe these signatures and all data on {path}: {description}?"):
                raise Conflict(f"not wiping {path}: confirmation declined", "pass --yes to confirm in scripts")
            to_wipe.append(path)
        additions.append(path)
    return members, additions, to_wipe, notes


def _plan_pool_size(
    vg: lvm.VolumeGroup | None, request: PoolSize, device_bytes: int, extent_size: int
) -> tuple[int, int]:
    """Return (data size, metadata size) in bytes for a new pool.

    ``device_bytes`` is the space in whole extents that the devices being
    added bring to the VG (see ``usable_pv_bytes``).
    """
    total = (vg.size if vg else 0) + device_bytes
    free = (vg.free if vg else 0) + device_bytes

    if request.size is not None:
        data = round_up(request.size, extent_size)
        metadata = metadata_size_for(data, extent_size)
        footprint = data + 2 * metadata
        if footprint > free:
            raise InvalidInput(
                f"a pool of {format_size(data)} needs {format_size(footprint)} with its "
                f"metadata and spare metadata, but only {format_size(free)} is free",
                "pass a smaller --size or add a device",
            )
        return data, metadata

    budget = free
    if request.percent is not None:
        budget = min(int(total * request.percent / 100) // extent_size * extent_size, free)
    # Solve data + 2 * metadata(data) <= budget; metadata grows with data.
    metadata = metadata_size_for(budget, extent_size)
    data = budget - 2 * metadata
    if data < extent_size * 2:
        raise InvalidInput(
            f"not enough free space for a thin pool: {format_size(budget)} available",
            "add a device, or pass a larger percentage with --size",
        )
    return data, metadata


def init_pool(
    ctx: Context,
    device_paths: list[str],
    vg_name: str,
    pool_name: str,
    request: PoolSize,
    force: bool = False,
    confirm: Confirm = lambda question: False,
    vg_tags: list[str] | None = None,
    known_empty: dict[str, int] | None = None,
) -> Outcome:
    """Make ``device_paths`` physical volumes of ``vg_name`` and create thin pool ``pool_name``.

    Idempotent: devices already in the VG and an existing pool of the same
    size are left alone. ``known_empty`` maps devices this run created
    itself (a new loop file) to their sizes; they need no signature check,
    and in a dry run they do not exist yet.
    """
    known_empty = known_empty or {}
    validate_vg_name(vg_name)
    validate_pool_name(pool_name, vg_name)
    if not device_paths:
        raise InvalidInput("no device given", "pass a device, or --file PATH --file-size SIZE")

    vgs = {vg.name: vg for vg in lvm.list_vgs(ctx.runner)}
    vg = vgs.get(vg_name)
    existing_lvs = lvm.list_lvs(ctx.runner, vg_name, hidden=True) if vg else []
    pool_lv = next((lv for lv in existing_lvs if lv.name == pool_name), None)

    members, additions, to_wipe, notes = check_devices(
        ctx, vg_name, device_paths, force, confirm, known_empty
    )
    if pool_lv is not None:
        _check_existing_pool(pool_lv, request, vg)

    extent_size = vg.extent_size if vg else 4 * MiB
    data_size = metadata_size = 0
    if pool_lv is None:
        added_bytes = sum(
            usable_pv_bytes(known_empty.get(path) or devices.device_size(path), extent_size)
            for path in additions
        )
        data_size, metadata_size = _plan_pool_size(vg, request, added_bytes, extent_size)

    changed = False
    for path in to_wipe:
        before_step(OPERATION, "wipe")
        devices.wipe_signatures(ctx.runner, path)
    for path in additions:
        before_step(OPERATION, "pvcreate")
        lvm.pvcreate(ctx.runner, path)
        changed = True
    wanted_vg_tags = vg_tags or []
    if vg is None:
        before_step(OPERATION, "vgcreate")
        lvm.vgcreate(ctx.runner, vg_name, additions, [*wanted_vg_tags, tags.VG_CREATED])
        changed = True
    else:
        if additions:
            lvm.vgextend(ctx.runner, vg_name, additions)
        missing_tags = [tag for tag in wanted_vg_tags if tag not in vg.tags]
        if missing_tags:
            lvm.add_vg_tags(ctx.runner, vg_name, missing_tags)
            changed = True

    if pool_lv is None:
        before_step(OPERATION, "lvcreate")
        lvm.create_thin_pool(
            ctx.runner, vg_name, pool_name, data_size, metadata_size, [tags.POOL]
        )
        changed = True
    elif tags.POOL not in pool_lv.tags:
        lvm.change_tags(ctx.runner, vg_name, pool_name, add=[tags.POOL], remove=[])
        changed = True

    details = {"vg": vg_name, "devices": members + additions}
    if ctx.dry_run:
        return Outcome(pool_name, changed, details, notes)

    pool = _read_pool(ctx, vg_name, pool_name)
    details["size_bytes"] = pool.lv.size
    before_step(OPERATION, "monitor")
    monitored_now, warning = pool_health.ensure_monitored(ctx, vg_name, pool_name)
    if warning:
        notes.append(warning)
    autoextend = pool_health.read_autoextend(ctx)
    details.update(autoextend.to_dict())
    warning = pool_health.growth_warning(
        autoextend, pool_name, vg_name, pool.lv.size, pool.lv.vg_free, pool.lv.extent_size
    )
    if warning:
        notes.append(warning)
    return Outcome(pool_name, changed or monitored_now, details, notes)


def usable_pv_bytes(device_size: int, extent_size: int) -> int:
    """Return the bytes a new PV of ``device_size`` adds to a VG, in whole extents.

    lvm2 2.03 starts a PV's data area 1 MiB into the device (pe_start) and
    counts only whole extents after it, so a 1 GiB device gives 1020 MiB
    with 4 MiB extents. Percentages of a new VG use this, so that a re-run,
    which reads the VG's real size, computes the same pool size.
    """
    return max(device_size - PV_DATA_OFFSET, 0) // extent_size * extent_size


def _check_existing_pool(pool_lv: lvm.LogicalVolume, request: PoolSize, vg) -> None:
    if pool_lv.segtype != "thin-pool":
        raise Conflict(
            f"{pool_lv.full_name} exists and is a {pool_lv.segtype or 'plain'} LV, not a thin pool",
            "choose another --name",
        )
    expected = None
    if request.size is not None:
        expected = round_up(request.size, pool_lv.extent_size)
    elif request.percent is not None and vg is not None:
        budget = int(vg.size * request.percent / 100) // vg.extent_size * vg.extent_size
        metadata = metadata_size_for(budget, vg.extent_size)
        expected = budget - 2 * metadata
    if expected is not None and expected != pool_lv.size:
        raise Conflict(
            f"pool {pool_lv.full_name} exists with size {format_size(pool_lv.size)}, "
            f"not the requested {format_size(expected)}",
            "omit --size to use it as it is",
        )


def _read_pool(ctx: Context, vg: str, name: str) -> Pool:
    inventory = read_inventory(ctx)
    for pool in inventory.pools:
        if pool.vg == vg and pool.name == name:
            return pool
    raise NotFound(f"pool {vg}/{name} is missing after creation", "check 'lvs -a {vg}'")


def init_file_pool(
    ctx: Context,
    path: str,
    file_size: int,
    vg_name: str,
    pool_name: str,
    request: PoolSize,
    force: bool = False,
    confirm: Confirm = lambda question: False,
) -> Outcome:
    """Create (or reuse) a sparse file, attach it as a loop device and init a pool on it.

    The file's path is recorded as a VG tag so that activation after a boot
    can attach it again. If the run created the file and a later step
    fails, the file is detached and removed again.
    """
    validate_vg_name(vg_name)
    validate_pool_name(pool_name, vg_name)
    path = os.path.abspath(path)
    if file_size < MIN_FILE_SIZE:
        raise InvalidInput(
            f"--file-size {format_size(file_size)} is too small for a thin pool",
            f"use at least {format_size(MIN_FILE_SIZE)}",
        )
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise NotFound(f"directory {parent} for --file not found", "create it first")

    created = False
    if os.path.exists(path):
        if not os.path.isfile(path):
            raise InvalidInput(f"--file {path} exists and is not a regular file")
        current = os.path.getsize(path)
        if current != file_size:
            raise Conflict(
                f"file {path} exists with size {format_size(current)}, "
                f"not the requested {format_size(file_size)}",
                "pass its current size with --file-size, or choose another path",
            )
    elif not ctx.dry_run:
        before_step(OPERATION, "file")
        with open(path, "xb") as handle:
            handle.truncate(file_size)
        os.chmod(path, 0o600)
        created = True

    loops = devices.loop_devices_of(ctx.runner, path)
    attached = False
    if loops:
        device = loops[0]
    else:
        before_step(OPERATION, "attach")
        device = devices.attach_loop(ctx.runner, path) or "<new loop device>"
        attached = True

    known_empty = {device: file_size} if created or (ctx.dry_run and not loops) else {}
    try:
        outcome = init_pool(
            ctx,
            [device],
            vg_name,
            pool_name,
            request,
            force=force,
            confirm=confirm,
            vg_tags=[tags.setting_tag(tags.LOOP_FILE, path)],
            known_empty=known_empty,
        )
    except Exception:
        if created:
            if attached:
                devices.detach_loop(ctx.runner, device)
            os.unlink(path)
        raise
    listed = record_loop_file(ctx, path)
    outcome.changed = outcome.changed or created or attached or listed
    outcome.details["file"] = path
    outcome.details["loop_device"] = device
    return outcome


def recorded_loop_files(ctx: Context) -> list[str]:
    """Return the backing files listed in ``loop_file_list``; none when the list does not exist."""
    try:
        with open(ctx.config.loop_file_list, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return []
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def record_loop_file(ctx: Context, path: str) -> bool:
    """Add ``path`` to ``loop_file_list`` so that ``activate`` attaches it at boot; return whether it was added."""
    if path in recorded_loop_files(ctx) or ctx.dry_run:
        return False
    os.makedirs(os.path.dirname(ctx.config.loop_file_list), mode=0o755, exist_ok=True)
    with open(ctx.config.loop_file_list, "a", encoding="utf-8") as handle:
        handle.write(path + "\n")
    return True
