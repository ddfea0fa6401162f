"""LV and VG tags that mark what lvmvol manages and store each volume's settings.

LVM metadata is lvmvol's only record of its volumes, so every setting that a
later command needs (filesystem, encryption, key file path) is a tag on the
LV. lvm2 accepts the characters ``A-Za-z0-9_+.-/=!:#&`` in tags; a value with
other characters (a space in a path, say) is stored with each such byte
written as ``:XX`` in hexadecimal, and ``:`` itself as ``:3a``.
"""

from __future__ import annotations

import re

PREFIX = "lvmvol."

# Marks a thin pool that lvmvol created or adopted.
POOL = PREFIX + "pool"
# Marks a thin volume or snapshot that lvmvol manages.
VOLUME = PREFIX + "volume"
# Set from lvcreate until the volume's filesystem exists, so that a re-run
# after a crash finishes the volume instead of treating it as complete.
INCOMPLETE = PREFIX + "incomplete"
# Settings with a value: lvmvol.fs=ext4.
FILESYSTEM = "fs"
# Encryption: lvmvol.crypt=luks2.
CRYPT = "crypt"
# Where the key comes from: an absolute key file path, or "passphrase".
KEY = "key"
# lvmvol.keygen=1: lvmvol generated the key file, so it may delete it.
KEY_GENERATED = "keygen"
# lvmvol.discards=1: open the dm-crypt mapping with --allow-discards.
DISCARDS = "discards"
# lvmvol.encrypting=SIZE: an in-place encryption started and has not
# finished; SIZE is the LV size in bytes before it grew for the LUKS2 header.
ENCRYPTING = "encrypting"
# lvmvol.encrypthead=SHA256: the SHA-256 (hexadecimal) of the volume's first
# 16 MiB before the encryption started, the part the LUKS2 header replaces.
ENCRYPT_HEAD = "encrypthead"
# Journal of an unfinished `volume restore`, on the origin: the snapshot
# whose content it gets (lvmvol.restorefrom=NAME), its own thin device id
# before the merge (lvmvol.restorethin=ID), and the snapshot's content
# settings to take over afterwards (lvmvol.restore.fs=ext4, ...).
RESTORE_FROM = "restorefrom"
RESTORE_THIN_ID = "restorethin"
RESTORE_SETTING_PREFIX = "restore."
# On the copy that `volume restore --keep-snapshot` makes of the snapshot:
# the origin's name. The copy takes the snapshot's name after the merge.
RESTORE_COPY = "restorecopy"
# Settings that describe what the LV's blocks contain, so a restore takes
# them from the snapshot along with its content.
CONTENT_SETTINGS = (FILESYSTEM, CRYPT, KEY, KEY_GENERATED, DISCARDS, ENCRYPTING, ENCRYPT_HEAD)
# lvmvol.mountpoint=PATH: ``lvmvol activate`` mounts the volume at PATH at
# boot; set by ``volume mount --persist``. Snapshots do not inherit it.
MOUNTPOINT = "mountpoint"
# lvmvol.mountopts=OPTS: the options given to that `volume mount --persist`
# (--options, plus ro or rw for --read-only or --read-write), which
# ``lvmvol activate`` passes again at boot. Absent when none were given.
MOUNT_OPTIONS = "mountopts"
# VG tag: lvmvol created this VG, so `pool rm` removes it with its last LV.
VG_CREATED = PREFIX + "vg"
# VG tag: the backing file of a loop device that is a PV of this VG.
LOOP_FILE = "loopfile"

_PLAIN = re.compile(r"[A-Za-z0-9_+.\-/=]")
_ESCAPE = re.compile(r":([0-9a-f]{2})")


def encode_value(value: str) -> str:
    """Encode ``value`` into characters lvm2 accepts in a tag."""
    encoded = []
    for char in value:
        if _PLAIN.match(char):
            encoded.append(char)
        else:
            encoded.extend(f":{byte:02x}" for byte in char.encode("utf-8"))
    return "".join(encoded)


def decode_value(encoded: str) -> str:
    """Reverse ``encode_value``."""
    raw = bytearray()
    position = 0
    for match in _ESCAPE.finditer(encoded):
        raw += encoded[position:match.start()].encode("utf-8")
        raw.append(int(match.group(1), 16))
        position = match.end()
    raw += encoded[position:].encode("utf-8")
    return raw.decode("utf-8", errors="replace")


def setting_tag(key: str, value: str) -> str:
    """Return the tag that stores ``key=value``, for example ``lvmvol.fs=ext4``."""
    return f"{PREFIX}{key}={encode_value(value)}"


def setting_key(tag: str) -> str | None:
    """Return the key of a setting tag (``fs`` for ``lvmvol.fs=ext4``), None for other tags."""
    if tag.startswith(PREFIX) and "=" in tag:
        return tag[len(PREFIX):].partition("=")[0]
    return None
def setting_values(tags: list[str], key: str) -> list[str]:
    """Return every value stored under ``key``, for a setting that a VG or LV can carry more than once."""
    prefix = f"{PREFIX}{key}="
    return [decode_value(tag[len(prefix):]) for tag in tags if tag.startswith(prefix)]


def parse_settings(tags: list[str]) -> dict[str, str]:
    """Return the ``key: value`` settings stored in lvmvol tags; other tags are ignored."""
    settings = {}
    for tag in tags:
        if tag.startswith(PREFIX) and "=" in tag:
            key, _, value = tag[len(PREFIX):].partition("=")
            settings[key] = decode_value(value)
    return settings


def setting_values(tags: list[str], key: str) -> list[str]:
    """Return every value of setting ``key`` in ``tags``; a VG may carry several ``loopfile`` tags."""
    prefix = f"{PREFIX}{key}="
    return [decode_value(tag[len(prefix):]) for tag in tags if tag.startswith(prefix)]
