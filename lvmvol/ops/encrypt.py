"""Encrypting a plain volume in place with LUKS2, keeping its data.

``cryptsetup reencrypt --encrypt --reduce-device-size`` moves the data up
the device to make room for the LUKS2 header and loses what was in the last
part of the device. lvmvol first grows the thin LV by that size, so the
filesystem keeps its size and the lost part is the new, empty space. Growing
a thin LV allocates nothing until the space is written.

Every step can be repeated after a crash. Before it changes anything,
lvmvol records its intent in the LV tags: ``lvmvol.encrypting=SIZE`` with
the size before growing, and the crypt and key tags of the finished volume.
Running the command again finds that tag and continues from what the device
shows: no LUKS header yet (start again), a header with an unfinished
reencryption (repair and resume), or a finished header (drop the tag).

cryptsetup copies the volume's first 16 MiB into the last 16 MiB of the
grown device, then writes the header over them. A crash during that one write is the only
moment a restart could lose data, so lvmvol records a checksum of those
16 MiB (``lvmvol.encrypthead``) and starts over only while they are unchanged.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from typing import Iterator

from lvmvol import crypt, devices, lvm, tags
from lvmvol.crypt import Key, ProgressCallback
from lvmvol.errors import CommandError, CommandTimeout, Conflict
from lvmvol.names import crypt_mapping_name
from lvmvol.ops.context import Context, Outcome, before_step
from lvmvol.ops.encryption import encryption_tags, generate_key, recorded_key
from lvmvol.ops.inventory import Inventory, Volume, read_inventory
from lvmvol.ops.mounting import ensure_active
from lvmvol.ops.removal import after_udev_probes, users_of
from lvmvol.units import format_size, round_up

# Parent of cryptsetup's working directory, into which it writes the new
# header as a temporary file before it places it on the device. Only root
# can write under /run, so no other user can plant a file or link there.
WORK_ROOT = "/run/lvmvol"
# The tags that exist only while an encryption is unfinished.
_INTENT_TAG_PREFIXES = (f"{tags.PREFIX}{tags.ENCRYPTING}=", f"{tags.PREFIX}{tags.ENCRYPT_HEAD}=")

# Named steps for the test-only fault hook (``before_step``), in order; a
# resumed encryption skips "mark". A kill while cryptsetup runs is tested
# on its own, because cryptsetup is then cut off part way.
OPERATION = "encrypt"
STEPS = ("mark", "grow", "reencrypt", "finish")


def encrypt_volume(
    ctx: Context,
    spec: str,
    key: Key | None = None,
    allow_discards: bool = False,
    on_progress: ProgressCallback | None = None,
) -> Outcome:
    """Encrypt the plain volume ``spec`` in place with LUKS2, or finish an interrupted encryption.

    Without ``key``, a random key file is generated as for ``volume create
    --luks``. A volume already encrypted with the same key is a no-op, also
    while mounted.
    Raises ``Conflict`` and changes nothing when the volume is in use, holds
    a LUKS header lvmvol did not record, or its pool lacks the space that
    rewriting every block needs. ``on_progress`` receives cryptsetup's
    progress reports.
    """
    inventory = read_inventory(ctx)
    volume = inventory.volume(spec)
    if volume.incomplete:
        raise Conflict(
            f"volume {volume.full_name} was not finished",
            "run the 'lvmvol volume create' that made it again first",
        )
    if volume.encrypted and not volume.encrypting:
        return _already_encrypted(ctx, volume, key, allow_discards)
    inventory = after_udev_probes(ctx, inventory, [volume])
    volume = inventory.volume(volume.full_name)
    _check_offline(volume)

    growth = round_up(crypt.ENCRYPT_REDUCE_BYTES, volume.lv.extent_size)
    details = {"vg": volume.vg, "pool": volume.lv.pool, "header_bytes": crypt.LUKS2_HEADER_BYTES}
    added_tags: list[str] = []
    if volume.encrypting:
        original_size = _recorded_size(volume)
        key = _key_for_resume(volume, key, allow_discards)
        device = ensure_active(ctx, volume)
    else:
        _check_pool_space(inventory, volume, growth)
        original_size = volume.lv.size
        device = ensure_active(ctx, volume)
        _check_no_luks_header(ctx, volume, device)
        key = key or generate_key(ctx, inventory, volume.vg, volume.name)
        added_tags = [tags.setting_tag(tags.ENCRYPTING, str(original_size))]
        if not ctx.dry_run:
            head = devices.checksum_start(device, crypt.LUKS2_HEADER_BYTES)
            added_tags.append(tags.setting_tag(tags.ENCRYPT_HEAD, head))
        added_tags += encryption_tags(key, allow_discards)
        before_step(OPERATION, "mark")
        lvm.change_tags(ctx.runner, volume.vg, volume.name, add=added_tags, remove=[])

    target_size = original_size + growth
    before_step(OPERATION, "grow")
    _grow(ctx, volume, original_size, target_size)
    before_step(OPERATION, "reencrypt")
    started_fresh = _run_cryptsetup(ctx, volume, device, key, on_progress, added_tags)
    _check_finished(ctx, volume, device)

    intent_tags = [
        tag for tag in volume.lv.tags + added_tags if tag.startswith(_INTENT_TAG_PREFIXES)
    ]
    before_step(OPERATION, "finish")
    lvm.change_tags(ctx.runner, volume.vg, volume.name, add=[], remove=list(dict.fromkeys(intent_tags)))
    details.update(
        {
            "size_bytes": target_size,
            "previous_size_bytes": original_size,
            "encrypted": True,
            "key_source": key.source,
            "resumed": not started_fresh,
            "device": device,
        }
    )
    notes = []
    snapshots = [child.name for child in inventory.children(volume) if not child.encrypted]
    if snapshots:
        notes.append(
            f"snapshots {', '.join(snapshots)} of {volume.name} stay plain and still contain its data "
            "unencrypted; remove them if that data must not stay readable"
        )
    return Outcome(volume.name, True, details, notes)


def _check_offline(volume: Volume) -> None:
    """Raise ``Conflict`` unless ``volume`` is writable and used by nothing."""
    if volume.lv.read_only:
        raise Conflict(f"volume {volume.full_name} is read-only, and encryption rewrites every block")
    holders = users_of(volume)
    if holders:
        raise Conflict(
            f"volume {volume.full_name} is in use: {'; '.join(holders)}",
            f"encryption in place needs it offline; unmount it with 'lvmvol volume umount {volume.name}' "
            "and stop what uses it",
        )


def _already_encrypted(ctx: Context, volume: Volume, key: Key | None, allow_discards: bool) -> Outcome:
    """Return "unchanged" for a volume encrypted as requested; raise ``Conflict`` otherwise."""
    differences = []
    if key is not None and key.source != volume.key_source:
        differences.append(f"its key is {volume.key_source}, not {key.source}")
    if allow_discards and not volume.allow_discards:
        differences.append("it was encrypted without --allow-discards")
    if differences:
        raise Conflict(
            f"volume {volume.full_name} is already encrypted, and {'; '.join(differences)}",
            f"change its key with 'lvmvol volume rekey {volume.name}'",
        )
    # A passphrase leaves no path to compare, so it must open the volume.
    if key is not None and key.passphrase is not None:
        device = ensure_active(ctx, volume)
        if not ctx.dry_run and not crypt.test_key(ctx.runner, device, key):
            raise Conflict(
                f"volume {volume.full_name} is already encrypted with another passphrase",
                f"change it with 'lvmvol volume rekey {volume.name}'",
            )
    details = {"vg": volume.vg, "pool": volume.lv.pool, "encrypted": True, "key_source": volume.key_source}
    return Outcome(volume.name, False, details)


def _recorded_size(volume: Volume) -> int:
    size = volume.size_before_encryption
    if size is None:
        raise Conflict(
            f"volume {volume.full_name} has an invalid {tags.PREFIX}{tags.ENCRYPTING} tag",
            "check its tags with 'lvs -o lv_tags'",
        )
    return size


def _key_for_resume(volume: Volume, key: Key | None, allow_discards: bool) -> Key:
    """Return the recorded key of an unfinished encryption; raise ``Conflict`` for another one."""
    if key is not None and key.source != volume.key_source:
        raise Conflict(
            f"the encryption of volume {volume.full_name} with key {volume.key_source} is unfinished, "
            f"so it cannot switch to {key.source}",
            "run the command again with the key it started with",
        )
    if allow_discards and not volume.allow_discards:
        raise Conflict(
            f"the encryption of volume {volume.full_name} started without --allow-discards",
            "run the command again without it",
        )
    return recorded_key(volume, key)


def _check_pool_space(inventory: Inventory, volume: Volume, growth: int) -> None:
    """Raise ``Conflict`` when the pool lacks the space that rewriting every block takes.

    Encryption writes the whole grown volume, so its unallocated blocks get
    allocated, and blocks it shares with snapshots get copied.
    """
    pool = next(
        (pool for pool in inventory.pools if pool.vg == volume.vg and pool.name == volume.lv.pool), None
    )
    if pool is None or pool.lv.data_percent is None:
        return
    free = int(pool.lv.size * (100 - pool.lv.data_percent) / 100)
    allocated = int(volume.lv.size * (volume.lv.data_percent or 0) / 100)
    # NOTE: blocks shared with a snapshot whose origin was removed are not
    # detected here, so the estimate can be low for such a volume.
    shares_blocks = volume.origin is not None or bool(inventory.children(volume))
    needed = volume.lv.size + growth - (0 if shares_blocks else allocated)
    if needed > free:
        raise Conflict(
            f"thin pool {pool.full_name} has {format_size(free)} free, and encrypting volume "
            f"{volume.full_name} allocates up to {format_size(needed)} more, because it rewrites every block",
            "extend the pool (lvextend) or free space in it first",
        )


def _check_no_luks_header(ctx: Context, volume: Volume, device: str) -> None:
    """Raise ``Conflict`` naming what was found when ``device`` contains a LUKS header, even a partial one."""
    found = [header.describe() for header in devices.find_luks_headers(device)] if not ctx.dry_run else []
    signature = devices.signatures(ctx.runner, device)
    if signature.get("TYPE") == "crypto_LUKS":
        found.append(f"a LUKS{signature.get('VERSION', '')} signature (blkid)")
    if not found and crypt.is_luks(ctx.runner, device):
        found.append("a LUKS header that cryptsetup recognizes")
    if found:
        raise Conflict(
            f"volume {volume.full_name} is not recorded as encrypted, but its device {device} contains "
            + " and ".join(dict.fromkeys(found)),
            "if the data on it is not needed, remove the volume and create it with --luks; "
            "otherwise inspect it with 'cryptsetup luksDump'",
        )


def _grow(ctx: Context, volume: Volume, original_size: int, target_size: int) -> None:
    """Grow the LV to ``target_size`` unless an earlier run did; raise ``Conflict`` on another size."""
    if volume.lv.size == target_size:
        return
    if volume.lv.size != original_size:
        raise Conflict(
            f"volume {volume.full_name} is {volume.lv.size} bytes, neither its size before the encryption "
            f"started ({original_size}) nor that size plus the room for the header ({target_size})",
            "its size changed while the encryption was unfinished; check it with 'lvs' before going on",
        )
    lvm.extend_lv(ctx.runner, volume.vg, volume.name, target_size)


def _run_cryptsetup(
    ctx: Context,
    volume: Volume,
    device: str,
    key: Key,
    on_progress: ProgressCallback | None,
    added_tags: list[str],
) -> bool:
    """Encrypt, resume or do nothing, as the header on ``device`` shows; return True when started here.

    A fresh encryption that cryptsetup rejects before it writes a header is
    undone: the tags added here are removed and the volume stays plain.
    """
    timeout = ctx.config.encrypt_timeout
    try:
        if not crypt.is_luks(ctx.runner, device):
            if volume.encrypting:
                _check_head_unchanged(ctx, volume, device)
            with _working_directory(ctx, volume) as workdir:
                try:
                    crypt.encrypt_in_place(ctx.runner, device, key, workdir, on_progress, timeout)
                except CommandError as error:
                    if not isinstance(error, CommandTimeout):
                        _undo_unstarted(ctx, volume, device, added_tags)
                    raise
            return True

        if crypt.reencryption_in_progress(crypt.luks2_metadata(ctx.runner, device)):
            crypt.repair(ctx.runner, device, key)
            crypt.resume_reencryption(ctx.runner, device, key, on_progress, timeout)
        return False
    except CommandTimeout as error:
        error.hint = (
            f"the encryption stopped cleanly; run 'lvmvol volume encrypt {volume.name}' again to resume it, "
            "and raise encrypt_timeout in the config file for volumes this large"
        )
        raise


def _check_finished(ctx: Context, volume: Volume, device: str) -> None:
    """Raise ``Conflict`` unless the header on ``device`` records a finished encryption.

    The intent tag stays until this check passes, so an encryption that
    cryptsetup left unfinished without an error resumes on the next run.
    """
    if ctx.dry_run:
        return
    if crypt.reencryption_in_progress(crypt.luks2_metadata(ctx.runner, device)):
        raise Conflict(
            f"cryptsetup exited before the encryption of volume {volume.full_name} finished",
            f"run 'lvmvol volume encrypt {volume.name}' again to resume it",
        )


def _check_head_unchanged(ctx: Context, volume: Volume, device: str) -> None:
    """Raise ``Conflict`` when an encryption that left no readable header may have overwritten data.

    Starting over is safe only while the first 16 MiB are what they were
    before the encryption started, because cryptsetup would copy them again.
    Without a recorded checksum, any LUKS magic there counts as a change.
    """
    if ctx.dry_run:
        return
    recorded = volume.settings.get(tags.ENCRYPT_HEAD)
    if recorded is not None:
        changed = devices.checksum_start(device, crypt.LUKS2_HEADER_BYTES) != recorded
    else:
        changed = bool(devices.find_luks_headers(device))
    if changed:
        raise Conflict(
            f"the first 16 MiB of volume {volume.full_name} changed while its encryption was unfinished, "
            "and cryptsetup cannot read a LUKS header there: its first write of the header was cut off",
            "do not write to the volume; cryptsetup copied those 16 MiB into the last 16 MiB of the "
            f"device {device} before that write, from where they can be restored",
        )


@contextlib.contextmanager
def _working_directory(ctx: Context, volume: Volume) -> Iterator[str]:
    """Yield an empty directory for cryptsetup's temporary header file, and remove it afterwards.

    A killed run leaves the directory with the temporary file; the next run
    empties it first.
    """
    path = os.path.join(WORK_ROOT, f"encrypt-{crypt_mapping_name(volume.vg, volume.name)}")
    if ctx.dry_run:
        yield path
        return
    os.makedirs(WORK_ROOT, mode=0o700, exist_ok=True)
    shutil.rmtree(path, ignore_errors=True)
    os.mkdir(path, mode=0o700)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _undo_unstarted(ctx: Context, volume: Volume, device: str, added_tags: list[str]) -> None:
    """Remove the tags added by a start that failed before cryptsetup touched the first 16 MiB.

    The volume is then plain again. The LV keeps its grown size, which the
    filesystem does not use. After any other failure the tags stay, so the
    next run resumes or refuses.
    """
    head = tags.parse_settings(added_tags).get(tags.ENCRYPT_HEAD)
    if not added_tags or head is None or ctx.dry_run:
        return
    if crypt.is_luks(ctx.runner, device) or devices.checksum_start(device, crypt.LUKS2_HEADER_BYTES) != head:
        return
    lvm.change_tags(ctx.runner, volume.vg, volume.name, add=[], remove=added_tags)
