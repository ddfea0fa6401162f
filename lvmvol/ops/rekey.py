"""Replacing the key of an encrypted volume, also while it is mounted.

The steps keep the volume openable throughout: ``luksAddKey`` adds a key
slot for the new key (both keys open the volume), ``luksRemoveKey`` removes
the old key's slot, and only then do the LV tags record the new key. After a
crash at any point, running the same command again skips what the header
shows as done and finishes. LUKS key slots can change while the dm-crypt
mapping is open, because the mapping already has the volume key, which a
rekey does not change.
"""

from __future__ import annotations

from lvmvol import crypt, lvm, tags
from lvmvol.crypt import Key
from lvmvol.errors import Conflict, InvalidInput, LvmvolError
from lvmvol.ops.context import Context, Outcome
from lvmvol.ops.encryption import recorded_key, remove_unused_key_file
from lvmvol.ops.inventory import Volume, read_inventory
from lvmvol.ops.mounting import ensure_active


def rekey_volume(ctx: Context, spec: str, new_key: Key, current_key: Key | None = None) -> Outcome:
    """Make ``new_key`` the only key of volume ``spec`` and record it in the LV tags.

    ``current_key`` defaults to the recorded key file; a passphrase volume
    needs it. A volume whose recorded key already is ``new_key`` and opens
    it is a no-op. A generated key file that no other volume records is
    deleted afterwards. Raises ``InvalidInput`` when neither key opens the
    volume, and ``Conflict`` for a volume that is not (or not yet) encrypted.
    """
    inventory = read_inventory(ctx)
    volume = inventory.volume(spec)
    _check_rekeyable(volume)
    device = ensure_active(ctx, volume)
    current, current_error = _current_key(volume, current_key)

    same_key = current is not None and current.material() == new_key.material()
    new_opens = crypt.test_key(ctx.runner, device, new_key)
    if same_key and not new_opens:
        raise InvalidInput(
            f"the new key {new_key.source} is the current key and does not open volume {volume.full_name}",
            "pass the key that opens it",
        )
    current_opens = current is not None and not same_key and crypt.test_key(ctx.runner, device, current)

    slot_added = False
    if not new_opens:
        if not current_opens:
            if current_error is not None:
                raise current_error
            raise InvalidInput(
                f"the current key {current.source} does not open volume {volume.full_name}",
                "pass the key that opens it with --key-file, --passphrase or --passphrase-stdin",
            )
        crypt.add_key(ctx.runner, device, current, new_key)
        slot_added = True

    slot_removed = False
    if current_opens:
        _check_other_slot(ctx, volume, device)
        crypt.remove_key(ctx.runner, device, current)
        slot_removed = True
    elif current is None:
        # The old key is unknown, so it is gone only when one slot is left.
        _check_only_slot(ctx, volume, device, current_error)

    tags_changed = _record_key(ctx, volume, new_key)
    details = {
        "vg": volume.vg,
        "key_source": new_key.source,
        "previous_key_source": volume.key_source,
        "key_slot_added": slot_added,
        "key_slot_removed": slot_removed,
    }
    if tags_changed and volume.key_generated and volume.key_source != new_key.source:
        details["key_file_removed"] = remove_unused_key_file(ctx, inventory, volume)
    return Outcome(volume.name, slot_added or slot_removed or tags_changed, details)


def _check_rekeyable(volume: Volume) -> None:
    if not volume.encrypted:
        raise Conflict(
            f"volume {volume.full_name} is not encrypted",
            f"encrypt it with 'lvmvol volume encrypt {volume.name}'",
        )
    if volume.encrypting:
        raise Conflict(
            f"the encryption of volume {volume.full_name} is unfinished",
            f"finish it with 'lvmvol volume encrypt {volume.name}' first",
        )
    if volume.incomplete:
        raise Conflict(
            f"volume {volume.full_name} was not finished",
            "run the 'lvmvol volume create' that made it again first",
        )
    if volume.lv.read_only:
        raise Conflict(f"volume {volume.full_name} is read-only, so its LUKS header cannot change")


def _current_key(volume: Volume, override: Key | None) -> tuple[Key | None, LvmvolError | None]:
    """Return the current key, or None with the reason when it is unknown or its file is missing.

    A re-run after a crash may no longer need the current key, so the error
    is raised only where the key is needed.
    """
    try:
        return recorded_key(volume, override), None
    except LvmvolError as error:
        return None, error


def _check_other_slot(ctx: Context, volume: Volume, device: str) -> None:
    """Raise ``Conflict`` when removing one key slot would leave ``device`` with none."""
    if ctx.dry_run:
        return
    slots = crypt.key_slots(crypt.luks2_metadata(ctx.runner, device))
    if len(slots) < 2:
        raise Conflict(
            f"volume {volume.full_name} has {len(slots)} key slot, so removing the current key "
            "would leave no way to open it",
            "check the key slots with 'cryptsetup luksDump'",
        )


def _check_only_slot(ctx: Context, volume: Volume, device: str, current_error: LvmvolError | None) -> None:
    """Raise ``current_error`` unless the new key's slot is the only one left."""
    if ctx.dry_run:
        return
    slots = crypt.key_slots(crypt.luks2_metadata(ctx.runner, device))
    if len(slots) > 1 and current_error is not None:
        raise current_error


def _record_key(ctx: Context, volume: Volume, new_key: Key) -> bool:
    """Record ``new_key`` in the LV tags; return whether the tags changed."""
    old_tags = [tags.setting_tag(tags.KEY, volume.key_source)]
    if volume.key_generated:
        old_tags.append(tags.setting_tag(tags.KEY_GENERATED, "1"))
    new_tags = [tags.setting_tag(tags.KEY, new_key.source)]
    if new_key.generated:
        new_tags.append(tags.setting_tag(tags.KEY_GENERATED, "1"))
    add = [tag for tag in new_tags if tag not in old_tags]
    remove = [tag for tag in old_tags if tag not in new_tags]
    if not add and not remove:
        return False
    lvm.change_tags(ctx.runner, volume.vg, volume.name, add=add, remove=remove)
    return True
