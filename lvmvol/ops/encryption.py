"""Opening and closing the dm-crypt mappings of encrypted volumes."""

from __future__ import annotations

from lvmvol import crypt, devices, keys
from lvmvol.crypt import Key
from lvmvol.errors import CommandError, Conflict, InvalidInput
from lvmvol.ops.context import Context, wait_for_device
from lvmvol.ops.inventory import Volume


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
    crypt.open_mapping(
        ctx.runner, device, volume.mapping, key, allow_discards=discards, read_only=volume.lv.read_only
    )
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
