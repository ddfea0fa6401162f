"""The ``--opt`` values of ``docker volume create --driver lvmvol``, checked and parsed.

The names are those users already pass to the LVM volume plugin that
lvmvol replaces: ``size``, ``thinpool`` (or ``pool``), ``snapshot``,
``keyfile``, ``crypt``, ``vg`` and ``fs``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lvmvol.config import FILESYSTEMS
from lvmvol.errors import InvalidInput
from lvmvol.units import parse_size

KNOWN_OPTIONS = ("size", "thinpool", "pool", "snapshot", "keyfile", "crypt", "vg", "fs")
CRYPT_VALUES = ("luks", "luks2")


@dataclass(frozen=True)
class CreateOptions:
    """What a Create request asks for; None for each option it leaves out."""

    size: int | None = None
    pool: str | None = None
    snapshot: str | None = None
    key_file: str | None = None
    encrypt: bool = False
    vg: str | None = None
    filesystem: str | None = None

    def pool_spec(self) -> str | None:
        """Return the pool as the CLI's ``--pool`` takes it: ``VG/NAME``, ``NAME`` or None."""
        if self.pool is None:
            return None
        return f"{self.vg}/{self.pool}" if self.vg else self.pool

    def snapshot_source(self) -> str | None:
        """Return the snapshot's origin as ``VG/NAME`` when ``vg`` is given, else as given."""
        if self.snapshot is None:
            return None
        return f"{self.vg}/{self.snapshot}" if self.vg else self.snapshot


def parse_create_options(opts: dict | None) -> CreateOptions:
    """Check the ``Opts`` of a Create request and return them parsed.

    Raises ``InvalidInput`` for an unknown option (the message lists the
    known ones), an empty or invalid value, or ``thinpool`` with ``pool``.
    """
    opts = dict(opts or {})
    unknown = sorted(name for name in opts if name not in KNOWN_OPTIONS)
    if unknown:
        raise InvalidInput(
            f"unknown option {', '.join(repr(name) for name in unknown)}",
            f"the lvmvol driver takes {', '.join(KNOWN_OPTIONS)}",
        )
    for name, value in opts.items():
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"option {name!r} is empty", f"pass it as --opt {name}=VALUE or leave it out")
    if "thinpool" in opts and "pool" in opts:
        raise InvalidInput("options 'thinpool' and 'pool' name the same setting", "pass one of them")

    crypt = opts.get("crypt")
    if crypt is not None and crypt.lower() not in CRYPT_VALUES:
        raise InvalidInput(f"invalid crypt option {crypt!r}", "use crypt=luks, or leave it out for a plain volume")
    filesystem = opts.get("fs")
    if filesystem is not None and filesystem not in FILESYSTEMS:
        raise InvalidInput(f"invalid fs option {filesystem!r}", f"use one of {', '.join(FILESYSTEMS)}")
    size = parse_size(opts["size"]) if "size" in opts else None

    return CreateOptions(
        size=size,
        pool=opts.get("thinpool", opts.get("pool")),
        snapshot=opts.get("snapshot"),
        key_file=opts.get("keyfile"),
        encrypt=crypt is not None or "keyfile" in opts,
        vg=opts.get("vg"),
        filesystem=filesystem,
    )
