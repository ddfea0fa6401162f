"""What lvmvol manages right now: pools and volumes from one ``lvs`` call, mounts from the kernel.

Nothing here is cached between commands. Each command reads the inventory,
decides, acts, and reads again where it must verify.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from datetime import datetime

from lvmvol import lvm, tags
from lvmvol.errors import Conflict, InvalidInput, NotFound
from lvmvol.mounts import MountEntry, mounts_by_device, read_mount_table
from lvmvol.names import crypt_mapping_name
from lvmvol.ops.context import Context


class _NamedByLV:
    """Name properties shared by pools and volumes, read from their LV."""

    lv: lvm.LogicalVolume

    @property
    def name(self) -> str:
        return self.lv.name

    @property
    def vg(self) -> str:
        return self.lv.vg

    @property
    def full_name(self) -> str:
        return self.lv.full_name


@dataclass
class Pool(_NamedByLV):
    """A thin pool that lvmvol manages."""

    lv: lvm.LogicalVolume
    volume_count: int = 0
    # Virtual size in bytes of every thin volume and snapshot in the pool,
    # lvmvol's or not: what the pool must hold if each of them is written full.
    committed_bytes: int = 0
    # Percentages of data and metadata use from which the pool counts as too
    # full (the pool_data_threshold and pool_metadata_threshold settings).
    data_threshold: float = 80.0
    metadata_threshold: float = 80.0

    @property
    def committed_ratio(self) -> float:
        """Committed virtual size as a multiple of the pool's data size."""
        return self.committed_bytes / self.lv.size if self.lv.size else 0.0

    def usage_past_threshold(self) -> list[str]:
        """Describe each of data and metadata use that is at or past its threshold.

        Returns phrases such as ``"data 85.2% >= 80%"``; an empty list
        when neither is, or when lvm2 reports no use because the pool is inactive.
        """
        found = []
        checks = (
            ("data", self.lv.data_percent, self.data_threshold),
            ("metadata", self.lv.metadata_percent, self.metadata_threshold),
        )
        for kind, used, threshold in checks:
            if used is not None and used >= threshold:
                found.append(f"{kind} {used:.1f}% >= {threshold:g}%")
        return found

    @property
    def past_threshold(self) -> bool:
        return bool(self.usage_past_threshold())

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "vg": self.vg,
            "size_bytes": self.lv.size,
            "data_percent": self.lv.data_percent,
            "metadata_percent": self.lv.metadata_percent,
            "metadata_size_bytes": self.lv.metadata_size,
            "volumes": self.volume_count,
            "vg_free_bytes": self.lv.vg_free,
            "committed_bytes": self.committed_bytes,
            "committed_ratio": round(self.committed_ratio, 3),
            "data_threshold_percent": self.data_threshold,
            "metadata_threshold_percent": self.metadata_threshold,
            "past_threshold": self.past_threshold,
        }


@dataclass
class Volume(_NamedByLV):
    """A thin volume or snapshot that lvmvol manages, with its mounts."""

    lv: lvm.LogicalVolume
    mounts: list[MountEntry] = field(default_factory=list)
    # True when the volume's thin pool is at or past its data or metadata threshold.
    pool_past_threshold: bool = False

    @functools.cached_property
    def settings(self) -> dict[str, str]:
        # Parsed once: to_dict() alone reads it seven times per volume.
        return tags.parse_settings(self.lv.tags)

    @property
    def filesystem(self) -> str:
        return self.settings.get(tags.FILESYSTEM, "none")

    @property
    def encrypted(self) -> bool:
        return self.settings.get(tags.CRYPT) == "luks2"

    @property
    def key_source(self) -> str | None:
        """The recorded key file path, "passphrase", or None for a plain volume."""
        return self.settings.get(tags.KEY) if self.encrypted else None

    @property
    def key_generated(self) -> bool:
        return self.settings.get(tags.KEY_GENERATED) == "1"

    @property
    def allow_discards(self) -> bool:
        return self.settings.get(tags.DISCARDS) == "1"

    @property
    def encrypting(self) -> bool:
        """True from the start of an in-place encryption until it finishes, also when interrupted."""
        return tags.ENCRYPTING in self.settings

    @property
    def size_before_encryption(self) -> int | None:
        """The LV size in bytes that an unfinished in-place encryption recorded, else None."""
        value = self.settings.get(tags.ENCRYPTING)
        return int(value) if value and value.isdigit() else None

    @property
    def mapping(self) -> str | None:
        """The dm-crypt mapping name of an encrypted volume, open or not."""
        return crypt_mapping_name(self.vg, self.name) if self.encrypted else None

    @property
    def mapping_device(self) -> str | None:
        return f"/dev/mapper/{self.mapping}" if self.mapping else None

    @property
    def mapping_open(self) -> bool:
        return self.mapping_device is not None and os.path.exists(self.mapping_device)

    @property
    def restoring_from(self) -> str | None:
        """The snapshot an unfinished restore is giving this volume the content of, else None."""
        return self.settings.get(tags.RESTORE_FROM)

    @property
    def restore_copy_of(self) -> str | None:
        """For the copy an unfinished restore made of its snapshot: the origin's name, else None."""
        return self.settings.get(tags.RESTORE_COPY)

    @property
    def restoring(self) -> bool:
        return self.restoring_from is not None or self.restore_copy_of is not None

    @property
    def persistent_mountpoint(self) -> str | None:
        """Where ``lvmvol activate`` mounts the volume at boot, set by ``volume mount --persist``."""
        return self.settings.get(tags.MOUNTPOINT)

    @property
    def persistent_mount_options(self) -> str:
        """The options ``volume mount --persist`` was given, which ``lvmvol activate`` passes again."""
        return self.settings.get(tags.MOUNT_OPTIONS, "")

    @property
    def incomplete(self) -> bool:
        return tags.INCOMPLETE in self.lv.tags

    @property
    def origin(self) -> str | None:
        return self.lv.origin or None

    @property
    def device(self) -> str:
        return self.lv.dm_path

    @property
    def mountpoint(self) -> str | None:
        return self.mounts[0].mountpoint if self.mounts else None

    @property
    def created(self) -> datetime | None:
        return self.lv.created

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "vg": self.vg,
            "pool": self.lv.pool,
            "pool_past_threshold": self.pool_past_threshold,
            "size_bytes": self.lv.size,
            "filesystem": self.filesystem,
            "encrypted": self.encrypted,
            "key_source": self.key_source,
            "mapping": self.mapping if self.mapping_open else None,
            "allow_discards": self.allow_discards if self.encrypted else None,
            "origin": self.origin,
            "active": self.lv.active,
            "open": self.lv.open,
            "read_only": self.lv.read_only,
            "mountpoint": self.mountpoint,
            "mountpoints": [entry.mountpoint for entry in self.mounts],
            "persistent_mountpoint": self.persistent_mountpoint,
            "device": self.device if self.lv.active else None,
            "created": self.created.isoformat() if self.created else None,
            "incomplete": self.incomplete,
            "encrypting": self.encrypting,
            "restoring": self.restoring,
        }


@dataclass
class Inventory:
    pools: list[Pool]
    volumes: list[Volume]
    # Every LV lvm2 reported, lvmvol's or not, to detect name clashes.
    all_lvs: list[lvm.LogicalVolume]

    def find_lv(self, vg: str, name: str) -> lvm.LogicalVolume | None:
        for lv in self.all_lvs:
            if lv.vg == vg and lv.name == name:
                return lv
        return None

    def find_volume(self, spec: str) -> Volume | None:
        """Return the volume named ``NAME`` or ``VG/NAME``; None when there is none.

        Raises ``InvalidInput`` when a bare name matches volumes in several VGs.
        """
        vg, _, name = spec.rpartition("/")
        matches = [
            volume for volume in self.volumes if volume.name == name and (not vg or volume.vg == vg)
        ]
        if len(matches) > 1:
            names = ", ".join(volume.full_name for volume in matches)
            raise InvalidInput(
                f"volume name {spec!r} is ambiguous: {names}", "pass it as VG/NAME"
            )
        return matches[0] if matches else None

    def volume(self, spec: str) -> Volume:
        """Return the volume named ``spec``; raise ``NotFound`` listing what exists otherwise."""
        found = self.find_volume(spec)
        if found is None:
            raise NotFound(f"volume {spec!r} not found", "list volumes with: lvmvol volume ls")
        return found

    def pool_of(self, volume: Volume) -> Pool | None:
        """Return the managed thin pool that holds ``volume``, or None when lvmvol does not manage it."""
        for pool in self.pools:
            if pool.vg == volume.vg and pool.name == volume.lv.pool:
                return pool
        return None

    def children(self, volume: Volume) -> list[Volume]:
        """Return the snapshots whose origin is ``volume``."""
        return [
            other for other in self.volumes if other.vg == volume.vg and other.origin == volume.name
        ]

    def resolve_pool(self, spec: str | None, default: str = "") -> Pool:
        """Return the pool for ``--pool spec``.

        Without ``spec``: the configured default, else the only pool lvmvol
        manages. Raises ``NotFound`` or ``InvalidInput`` with the pools that
        exist when the choice is missing or ambiguous.
        """
        wanted = spec or default
        known = ", ".join(pool.full_name for pool in self.pools) or "none"
        if not wanted:
            if len(self.pools) == 1:
                return self.pools[0]
            if not self.pools:
                raise NotFound(
                    "no thin pool managed by lvmvol exists",
                    "create one with: lvmvol pool init DEVICE (or --file PATH --file-size SIZE)",
                )
            raise InvalidInput(
                f"several pools exist ({known}) and no default is configured",
                "pass --pool VG/NAME or set pool in the config file",
            )
        vg, _, name = wanted.rpartition("/")
        matches = [pool for pool in self.pools if pool.name == name and (not vg or pool.vg == vg)]
        if not matches:
            raise NotFound(f"pool {wanted!r} not found (pools: {known})", "check --pool")
        if len(matches) > 1:
            raise InvalidInput(f"pool name {wanted!r} is ambiguous ({known})", "pass it as VG/NAME")
        return matches[0]


def check_name_free(inventory: Inventory, vg: str, name: str) -> None:
    """Raise ``Conflict`` when ``name`` is taken in ``vg`` or by an lvmvol volume in another VG."""
    taken = inventory.find_lv(vg, name)
    if taken is not None and tags.VOLUME not in taken.tags:
        raise Conflict(
            f"an LV named {taken.full_name} exists and is not managed by lvmvol",
            "choose another name",
        )
    for volume in inventory.volumes:
        if volume.name == name and volume.vg != vg:
            raise Conflict(
                f"volume name {name!r} is already used in volume group {volume.vg!r}",
                "volume names must be unique on the host; choose another name",
            )


def _mounts_of_volume(volume: Volume, by_device: dict[tuple[int, int], list[MountEntry]]) -> list[MountEntry]:
    """Return the mounts of the volume's filesystem: on its dm-crypt mapping when encrypted."""
    if not volume.encrypted:
        if volume.lv.major is None or volume.lv.minor is None:
            return []
        return list(by_device.get((volume.lv.major, volume.lv.minor), []))
    try:
        rdev = os.stat(volume.mapping_device).st_rdev
    except FileNotFoundError:
        return []
    return list(by_device.get((os.major(rdev), os.minor(rdev)), []))


def read_inventory(ctx: Context) -> Inventory:
    """Read all pools and volumes with one ``lvs`` call and the kernel's mount table."""
    all_lvs = lvm.list_lvs(ctx.runner)
    by_device = mounts_by_device(read_mount_table())

    pools = [Pool(lv) for lv in all_lvs if lv.segtype == "thin-pool" and tags.POOL in lv.tags]
    volumes = []
    for lv in all_lvs:
        if tags.VOLUME not in lv.tags:
            continue
        volume = Volume(lv)
        volume.mounts = _mounts_of_volume(volume, by_device)
        volumes.append(volume)
    for pool in pools:
        pool.volume_count = sum(
            1 for volume in volumes if volume.vg == pool.vg and volume.lv.pool == pool.name
        )
        pool.committed_bytes = sum(
            lv.size for lv in all_lvs if lv.segtype == "thin" and lv.vg == pool.vg and lv.pool == pool.name
        )
        pool.data_threshold = ctx.config.pool_data_threshold
        pool.metadata_threshold = ctx.config.pool_metadata_threshold
        for volume in volumes:
            if volume.vg == pool.vg and volume.lv.pool == pool.name:
                volume.pool_past_threshold = pool.past_threshold
    return Inventory(pools=pools, volumes=volumes, all_lvs=all_lvs)
