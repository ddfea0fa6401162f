"""Keys and dm-crypt mappings of encrypted volumes.

Which key opens a volume, generated key files and when to delete them, the
tags that record encryption, and opening and closing mappings.
"""

from __future__ import annotations

import os

from lvmvol import crypt, devices, keys, tags
from lvmvol.crypt import Key
from lvmvol.errors import CommandError, Conflict, InvalidInput
from lvmvol.names import crypt_mapping_name
from lvmvol.ops.context import Context, wait_for_device
from lvmvol.ops.inventory import Inventory, Volume


def recorded_key(volume: Volume, override: Key | None) -> Key:
    """Return the key that opens ``volume``: ``override``, else the recorded key file.

    Raises ``InvalidInput`` for a passphrase volume without a passphrase,
    and the key file checks' errors for a recorded file that is missing or
    unsafe.
    """
    if override is not None:
        return override
    source = volume.key_source
    if source is None or source == "passphrase":
        raise InvalidInput(
            f"volume {volume.full_name} is encrypted with a passphrase",
            "pass --passphrase to type it, or --passphrase-stdin in scripts",
        )
    return Key(path=keys.validate_key_file(source), generated=volume.key_generated)


def generate_key(ctx: Context, inventory: Inventory, vg: str, name: str) -> Key:
    """Generate the key file of a new volume; reuse one that an interrupted create left unused."""
    mapping = crypt_mapping_name(vg, name)
    path = keys.generated_key_path(ctx.config.key_dir, mapping)
    if ctx.dry_run:
        return Key(path=path, generated=True)
    if os.path.exists(path) and not any(volume.key_source == path for volume in inventory.volumes):
        return Key(path=keys.validate_key_file(path), generated=True)
    return Key(path=keys.generate_key_file(ctx.config.key_dir, mapping), generated=True)


def encryption_tags(key: Key, allow_discards: bool) -> list[str]:
    result = [tags.setting_tag(tags.CRYPT, "luks2"), tags.setting_tag(tags.KEY, key.source)]
    if key.generated:
        result.append(tags.setting_tag(tags.KEY_GENERATED, "1"))
    if allow_discards:
        result.append(tags.setting_tag(tags.DISCARDS, "1"))
    return result


def remove_unused_key_file(
    ctx: Context, inventory: Inventory, volume: Volume, removed: set[str] = frozenset()
) -> bool:
    """Delete a generated key file once no remaining volume (such as a snapshot) records it.

    ``removed`` names the volumes the same command already removed.
    """
    path = volume.key_source
    gone = set(removed) | {volume.full_name}
    still_used = any(other.key_source == path for other in inventory.volumes if other.full_name not in gone)
    if still_used or ctx.dry_run or path is None:
        return False
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def open_volume(
    ctx: Context, volume: Volume, device: str, key: Key | None, allow_discards: bool | None
) -> str:
    """Open the dm-crypt mapping of ``volume`` unless it is open; return the mapping's device.

    ``allow_discards`` None means the setting recorded at create.
    """
    mapping_device = volume.mapping_device
    if volume.mapping_open:
        return mapping_device
    key = recorded_key(volume, key)
    discards = volume.allow_discards if allow_discards is None else allow_discards
    try:
        crypt.open_mapping(
            ctx.runner, device, volume.mapping, key, allow_discards=discards, read_only=volume.lv.read_only
        )
    except CommandError as error:
        if error.returncode != crypt.EXIT_WRONG_KEY:
            raise
        given = "the passphrase" if key.passphrase is not None else f"key file {key.path}"
        raise InvalidInput(
            f"{given} does not open volume {volume.full_name}",
            f"give its key with --key-file or a passphrase option; its recorded key is {volume.key_source}",
        ) from None
    wait_for_device(ctx, mapping_device)
    return mapping_device


def close_volume(ctx: Context, volume: Volume) -> bool:
    """Close the dm-crypt mapping of ``volume``; return whether one was open.

    A mapping that stays busy after the retries raises ``Conflict`` naming
    what holds it; the LV stays in place.
    """
    if not volume.mapping_open:
        return False
    try:
        crypt.close_mapping(ctx.runner, volume.mapping)
    except CommandError as error:
        if error.returncode != crypt.EXIT_BUSY:
            raise
        holders = _mapping_holders(volume)
        raise Conflict(
            f"dm-crypt mapping {volume.mapping} of volume {volume.full_name} is busy"
            + (f" (held by {', '.join(holders)})" if holders else ""),
            f"stop what uses {volume.mapping_device} (see 'fuser -vm {volume.mapping_device}'), "
            "then run the command again",
        ) from None
    wait_for_device(ctx, volume.mapping_device, present=False)
    return True


def _mapping_holders(volume: Volume) -> list[str]:
    try:
        device = devices.block_device(volume.mapping_device)
    except Exception:  # the mapping went away meanwhile: nothing holds it
        return []
    return devices.holders(device)
