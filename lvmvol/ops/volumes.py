"""Creating thin volumes, plain or on LUKS2."""

from __future__ import annotations

import os

from lvmvol import crypt, fs, lvm, tags
from lvmvol.crypt import LUKS2_HEADER_BYTES, Key
from lvmvol.config import FILESYSTEMS
from lvmvol.errors import CommandError, CommandTimeout, Conflict, InvalidInput, LvmvolError
from lvmvol.names import crypt_mapping_name, generate_volume_name, lv_device_path, validate_lv_name
from lvmvol.ops.capacity import check_pool_capacity
from lvmvol.ops.context import Context, Outcome, before_step, wait_for_device
from lvmvol.ops.encryption import encryption_tags, generate_key, recorded_key
from lvmvol.ops.inventory import Volume, check_name_free, read_inventory
from lvmvol.units import format_size, round_up

# Named steps for the test-only fault hook (``before_step``), in order; the
# LUKS steps run only with encryption, mkfs only with a filesystem.
OPERATION = "create"
STEPS = ("key", "lvcreate", "format", "open", "mkfs", "close", "finish")


def create_volume(
    ctx: Context,
    name: str | None,
    size: int,
    pool_spec: str | None = None,
    filesystem: str | None = None,
    encrypt: bool = False,
    key: Key | None = None,
    allow_discards: bool = False,
    allow_overcommit: bool = False,
    mount: bool = False,
    mountpoint: str | None = None,
) -> Outcome:
    """Create a thin volume of ``size`` bytes with a filesystem, optionally on LUKS2.

    The same name with the same specification is a no-op; the same name
    with another specification raises ``Conflict`` and changes nothing. A
    volume left incomplete by an interrupted run (tagged
    ``lvmvol.incomplete``) is finished now. A new volume must pass the
    pool's capacity check (``check_pool_capacity``). With ``encrypt`` and no
    ``key``, a random key file is generated in the configured key directory.
    With ``mount``, the volume is then mounted at ``mountpoint`` (default:
    mount_root/NAME). That path is checked before anything is made. An
    encrypted volume's mapping stays open from mkfs to the mount, so its key
    is derived once. If that mount fails, the volume stays, its mapping is
    closed and the error names it, so the same command with NAME mounts it.
    """
    filesystem = filesystem or ctx.config.filesystem
    if filesystem not in FILESYSTEMS:
        raise InvalidInput(f"invalid filesystem {filesystem!r}", f"use one of {', '.join(FILESYSTEMS)}")
    if name is not None:
        validate_lv_name(name)
    if key is not None and not encrypt:
        raise InvalidInput("a key file or passphrase needs --luks")
    if allow_discards and not encrypt:
        raise InvalidInput("--allow-discards applies to encrypted volumes; pass --luks too")
    # The LUKS2 header takes 16 MiB of the volume, so the filesystem gets that much less.
    fs.validate_size(filesystem, size - (LUKS2_HEADER_BYTES if encrypt else 0))

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
        "encrypted": encrypt,
    }
    notes = []
    if actual_size != size:
        notes.append(
            f"size rounded up from {format_size(size)} ({size} bytes) to "
            f"{format_size(actual_size)} ({actual_size} bytes), a whole number of extents"
        )

    existing = inventory.find_volume(f"{pool.vg}/{name}")
    if mount:
        from lvmvol.ops import mounting

        if filesystem == "none":
            raise InvalidInput("a volume made with --fs none has no filesystem to mount", "drop --mount")
        mountpoint = mounting.check_mount_target(ctx, existing, name, mountpoint)
    if existing is not None:
        _check_same_spec(existing, pool.name, actual_size, filesystem, encrypt, key)
        if not existing.incomplete:
            outcome = Outcome(name, False, {**details, "key_source": existing.key_source})
            return _mount_new(ctx, outcome, key, mountpoint, opened=False) if mount else outcome
        if encrypt:
            key = recorded_key(existing, key)
    else:
        check_name_free(inventory, pool.vg, name)
        note = check_pool_capacity(
            ctx, pool, actual_size, allow_overcommit, f"a {format_size(actual_size)} volume"
        )
        if note:
            notes.append(note)

    generated_key = None
    if existing is None:
        if encrypt and key is None:
            before_step(OPERATION, "key")
            generated_key = generate_key(ctx, inventory, pool.vg, name)
            key = generated_key
        volume_tags = [tags.VOLUME, tags.INCOMPLETE, tags.setting_tag(tags.FILESYSTEM, filesystem)]
        if encrypt:
            volume_tags += encryption_tags(key, allow_discards)
        before_step(OPERATION, "lvcreate")
        try:
            lvm.create_thin_volume(ctx.runner, pool.vg, pool.name, name, actual_size, volume_tags)
        except CommandTimeout:
            raise  # the LV may exist after all; a re-run reuses the key file
        except CommandError:
            if generated_key is not None and not ctx.dry_run:
                _remove_key_file(generated_key.path)
            raise

    device = lv_device_path(pool.vg, name)
    mapping = crypt_mapping_name(pool.vg, name)
    try:
        if existing is not None and not existing.lv.active:
            lvm.activate(ctx.runner, pool.vg, name)
        wait_for_device(ctx, device)

        target = device
        if encrypt:
            target = _format_and_open(ctx, device, mapping, key, allow_discards, fresh=existing is None)
        if filesystem != "none":
            before_step(OPERATION, "mkfs")
            fs.make_filesystem(ctx.runner, filesystem, target)
        if encrypt and not mount:
            before_step(OPERATION, "close")
            crypt.close_mapping(ctx.runner, mapping)
        before_step(OPERATION, "finish")
        lvm.change_tags(ctx.runner, pool.vg, name, add=[], remove=[tags.INCOMPLETE])
    except Exception:
        if existing is None:
            _undo_create(ctx, pool.vg, name, mapping if encrypt else None, generated_key)
        raise

    if encrypt:
        details["key_source"] = key.source
    outcome = Outcome(name, True, {**details, "device": device}, notes)
    return _mount_new(ctx, outcome, key, mountpoint, opened=encrypt) if mount else outcome


def _mount_new(ctx: Context, created: Outcome, key: Key | None, mountpoint: str, opened: bool) -> Outcome:
    """Mount the volume that ``created`` describes, closing the mapping that create left ``opened`` if the mount fails."""
    from lvmvol.ops import mounting

    if ctx.dry_run and created.changed:
        # The volume exists only in the commands that were not run, so there is nothing to read back.
        note = f"dry run: the volume would then be mounted at {mountpoint}"
        planned = mounting.mount_details(ctx, created.details["filesystem"], mountpoint, read_only=False)
        return Outcome(created.name, True, {**created.details, **planned}, created.notes + [note])

    full_name = f"{created.details['vg']}/{created.name}"
    try:
        mounted = mounting.mount_volume(ctx, full_name, mountpoint, key)
    except Exception as error:
        kept_state = f"volume {full_name} is kept, not mounted"
        if opened:
            mapping = crypt_mapping_name(created.details["vg"], created.name)
            try:
                crypt.close_mapping(ctx.runner, mapping)
            except LvmvolError as close_error:
                # The mount error stays the one reported, and the open mapping is added to its hint.
                kept_state += f", and its mapping {mapping} is still open ({close_error.message})"
        if isinstance(error, LvmvolError):
            # A generated name is printed only on success, so the error must name the volume that stays.
            kept_hint = f"{kept_state}; once that is fixed, mount it with: lvmvol volume mount {created.name} {mountpoint}"
            error.hint = f"{error.hint}; {kept_hint}" if error.hint else kept_hint
        raise
    return Outcome(
        created.name,
        created.changed or mounted.changed,
        {**created.details, **mounted.details},
        created.notes + mounted.notes,
    )


def _format_and_open(
    ctx: Context, device: str, mapping: str, key: Key, allow_discards: bool, fresh: bool
) -> str:
    """Write the LUKS2 header (unless a re-run finds it there) and open the mapping."""
    if fresh or not crypt.is_luks(ctx.runner, device):
        before_step(OPERATION, "format")
        crypt.luks_format(ctx.runner, device, key)
    mapping_device = f"/dev/mapper/{mapping}"
    if ctx.dry_run or not os.path.exists(mapping_device):
        before_step(OPERATION, "open")
        crypt.open_mapping(ctx.runner, device, mapping, key, allow_discards=allow_discards)
    wait_for_device(ctx, mapping_device)
    return mapping_device


def _undo_create(ctx: Context, vg: str, name: str, mapping: str | None, generated_key: Key | None) -> None:
    """Remove what a failed create made, so that nothing is left behind."""
    if mapping is not None and os.path.exists(f"/dev/mapper/{mapping}"):
        crypt.close_mapping(ctx.runner, mapping)
    lvm.remove_lv(ctx.runner, vg, name)
    if generated_key is not None and not ctx.dry_run and generated_key.path:
        _remove_key_file(generated_key.path)


def _remove_key_file(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _check_same_spec(
    existing: Volume, pool: str, size: int, filesystem: str, encrypt: bool, key: Key | None
) -> None:
    differences = []
    if existing.origin is not None:
        differences.append(f"it is a snapshot of {existing.origin}")
    if existing.lv.pool != pool:
        differences.append(f"pool {existing.lv.pool}, not {pool}")
    if existing.lv.size != size:
        differences.append(f"size {format_size(existing.lv.size)}, not {format_size(size)}")
    if existing.filesystem != filesystem:
        differences.append(f"filesystem {existing.filesystem}, not {filesystem}")
    if existing.encrypted != encrypt:
        differences.append("encrypted" if existing.encrypted else "not encrypted")
    elif key is not None and existing.key_source != key.source:
        differences.append(f"key {existing.key_source}, not {key.source}")
    if differences:
        raise Conflict(
            f"volume {existing.full_name} exists with another specification: "
            + "; ".join(differences),
            "choose another name, or remove the volume first",
        )
