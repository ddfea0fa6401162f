"""Validation of volume group and volume names, and the device-mapper names made from them.

lvm2 checks names only when the command that uses them runs, which can be
after other steps have already changed the system. lvmvol applies the same
rules first, so a bad name fails before anything runs, with the rule it breaks.
"""

from __future__ import annotations

import re
from datetime import datetime

from lvmvol.errors import InvalidInput

_ALLOWED = re.compile(r"[A-Za-z0-9+_.-]+")

# lvm2 2.03 rejects LV names that contain these strings anywhere, because it
# names its hidden sub-LVs with them (thin pool data and metadata, RAID images).
RESERVED_LV_STRINGS = (
    "_cdata",
    "_cmeta",
    "_corig",
    "_cpool",
    "_cvol",
    "_imeta",
    "_iorig",
    "_mimage",
    "_mlog",
    "_pmspare",
    "_rimage",
    "_rmeta",
    "_tdata",
    "_tmeta",
    "_vdata",
    "_vorigin",
    "_wcorig",
)
RESERVED_LV_PREFIXES = ("snapshot", "pvmove")

# The kernel's device-mapper name limit (DM_NAME_LEN is 128, including the NUL).
DM_NAME_MAX = 127
# lvm2's own limit for VG and LV names (NAME_LEN is 128, including the NUL).
LVM_NAME_MAX = 127

CRYPT_MAPPING_PREFIX = "luks-"


def _check_common(name: str, kind: str) -> None:
    if not name:
        raise InvalidInput(f"{kind} name must not be empty")
    if not _ALLOWED.fullmatch(name):
        bad = sorted({char for char in name if not _ALLOWED.fullmatch(char)})
        shown = ", ".join("space" if char == " " else repr(char) for char in bad)
        raise InvalidInput(
            f"invalid {kind} name {name!r}: it contains {shown}, which LVM does not allow",
            "use only letters, digits and + _ . -",
        )
    if name.startswith("-"):
        raise InvalidInput(f"invalid {kind} name {name!r}: it must not start with '-'")
    if name in (".", ".."):
        raise InvalidInput(f"invalid {kind} name {name!r}: '.' and '..' are reserved")
    if len(name) > LVM_NAME_MAX:
        raise InvalidInput(
            f"invalid {kind} name {name[:20]!r}...: {len(name)} characters, "
            f"the maximum is {LVM_NAME_MAX}"
        )


def dm_name(vg: str, lv: str) -> str:
    """Return the device-mapper name lvm2 gives ``vg/lv``: hyphens doubled, joined by one."""
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


def split_dm_name(name: str) -> tuple[str, str] | None:
    """Return (VG, LV) for a device-mapper name that ``dm_name`` made, or None when it is not one.

    The separator is the first hyphen that is not half of a doubled one.
    """
    position = 0
    while position < len(name):
        if name[position] == "-":
            if name[position + 1:position + 2] == "-":
                position += 2
                continue
            vg, lv = name[:position], name[position + 1:]
            if not vg or not lv:
                return None
            return vg.replace("--", "-"), lv.replace("--", "-")
        position += 1
    return None


def lv_device_path(vg: str, lv: str) -> str:
    """Return the /dev/mapper node of ``vg/lv``."""
    return f"/dev/mapper/{dm_name(vg, lv)}"


def crypt_mapping_name(vg: str, lv: str) -> str:
    """Return the name of the dm-crypt mapping lvmvol opens on ``vg/lv``."""
    return CRYPT_MAPPING_PREFIX + dm_name(vg, lv)


def validate_vg_name(name: str) -> None:
    """Raise ``InvalidInput`` naming the broken rule unless ``name`` is a valid VG name."""
    _check_common(name, "volume group")


def validate_lv_name(name: str, vg: str | None = None, kind: str = "volume") -> None:
    """Raise ``InvalidInput`` naming the broken rule unless ``name`` is a valid LV name.

    With ``vg`` given, also check that the dm-crypt mapping name that lvmvol
    would derive from ``vg/name`` fits the kernel's device-mapper name limit,
    so that a volume can always be encrypted later.
    """
    _check_common(name, kind)
    for prefix in RESERVED_LV_PREFIXES:
        if name.startswith(prefix):
            raise InvalidInput(
                f"invalid {kind} name {name!r}: names starting with {prefix!r} "
                "are reserved by LVM",
                "choose another name",
            )
    for reserved in RESERVED_LV_STRINGS:
        if reserved in name:
            raise InvalidInput(
                f"invalid {kind} name {name!r}: it contains {reserved!r}, "
                "which LVM reserves for internal volumes",
                "choose another name",
            )
    if vg is not None:
        mapping = crypt_mapping_name(vg, name)
        if len(mapping) > DM_NAME_MAX:
            room = DM_NAME_MAX - len(crypt_mapping_name(vg, ""))
            raise InvalidInput(
                f"invalid {kind} name {name[:20]!r}...: the device-mapper name "
                f"{mapping[:30]!r}... would be {len(mapping)} characters and the "
                f"kernel allows {DM_NAME_MAX}",
                f"use at most {room} characters in volume group {vg!r} "
                "(each '-' counts twice)",
            )


def validate_pool_name(name: str, vg: str) -> None:
    """Raise ``InvalidInput`` unless ``name`` is a valid thin pool name in ``vg``.

    lvm2 names the pool's hidden device-mapper devices ``VG-NAME-tpool``,
    ``VG-NAME_tdata`` and ``VG-NAME_tmeta``, which must fit the kernel's limit.
    """
    validate_lv_name(name, kind="pool")
    longest = dm_name(vg, name) + "_tdata"
    if len(longest) > DM_NAME_MAX:
        room = DM_NAME_MAX - len(dm_name(vg, "") + "_tdata")
        raise InvalidInput(
            f"invalid pool name {name[:20]!r}...: its device-mapper name {longest[:30]!r}... "
            f"would be {len(longest)} characters and the kernel allows {DM_NAME_MAX}",
            f"use at most {room} characters in volume group {vg!r} (each '-' counts twice)",
        )


# Suffix of the copy that `volume restore --keep-snapshot` makes of the
# snapshot. It has no '-', which device-mapper names double, and is shorter
# than "luks-", so the copy's device-mapper name fits wherever the
# snapshot's dm-crypt mapping name fits.
RESTORE_COPY_SUFFIX = "+keep"


def restore_copy_name(vg: str, snapshot: str) -> str:
    """Return the name of the copy of ``snapshot`` that a restore keeping the snapshot makes.

    Raises ``InvalidInput`` when its device-mapper name would pass the kernel's limit.
    """
    name = snapshot + RESTORE_COPY_SUFFIX
    _check_common(name, "snapshot copy")
    if len(dm_name(vg, name)) > DM_NAME_MAX:
        raise InvalidInput(
            f"snapshot name {snapshot[:20]!r}... is too long to keep the snapshot through a restore: "
            f"the device-mapper name of its copy {name[:20]!r}... would pass {DM_NAME_MAX} characters",
            "restore without --keep-snapshot, or take a snapshot with a shorter name and restore from that",
        )
    return name


def generate_volume_name() -> str:
    """Return a new random volume name such as ``vol-3f9a1c2e``."""
    import secrets  # imported here: it loads hashlib and random, which no other command needs

    return f"vol-{secrets.token_hex(4)}"


def generate_snapshot_name(source: str, now: datetime | None = None) -> str:
    """Return a snapshot name made from the source and the time: ``db-20261204-183000``.

    Seconds resolution lets a cron job take one snapshot a minute or less
    often without choosing names; a clash is reported by the create step.
    """
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    return f"{source}-{stamp}"
