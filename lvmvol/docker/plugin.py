"""The Docker volume plugin's requests, each answered by the operations the CLI runs.

``VolumePlugin.handle(path, body)`` takes the URL path and the decoded
JSON body of one request and returns the HTTP status and the JSON answer.
Create, Remove, Mount and Unmount change the system: they run inside
``mutation_guard`` (root check and the command lock, taken per request).
Get, List, Path and Capabilities read LVM and the mount table without the
lock, so a slow create does not hold them up.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from typing import Callable

from lvmvol.crypt import Key
from lvmvol.docker.mount_ids import MountIds
from lvmvol.docker.options import CreateOptions, parse_create_options
from lvmvol.errors import Conflict, InvalidInput, LvmvolError, NotFound
from lvmvol.keys import validate_key_file
from lvmvol.ops import mounting, removal, snapshots, volumes
from lvmvol.ops.context import Context
from lvmvol.ops.inventory import Inventory, Volume, read_inventory
from lvmvol.units import format_size, round_up

log = logging.getLogger("lvmvol.docker")

# Called with the request's name (such as "VolumeDriver.Create"); the
# context manager it returns is held while the request changes the system.
MutationGuard = Callable[[str], AbstractContextManager]

# Each answer carries "Err" so that Docker, which reads it also on a 200
# answer, sees an empty one on success.
OK = {"Err": ""}


class VolumePlugin:
    """The request handlers of the ``lvmvol`` Docker volume driver."""

    def __init__(self, ctx: Context, mount_ids: MountIds, mutation_guard: MutationGuard):
        self.ctx = ctx
        self.mount_ids = mount_ids
        self.mutation_guard = mutation_guard
        self.read_only_handlers = {
            "/Plugin.Activate": self.activate,
            "/VolumeDriver.Capabilities": self.capabilities,
            "/VolumeDriver.List": self.list,
            "/VolumeDriver.Get": self.get,
            "/VolumeDriver.Path": self.path,
        }
        self.mutating_handlers = {
            "/VolumeDriver.Create": self.create,
            "/VolumeDriver.Remove": self.remove,
            "/VolumeDriver.Mount": self.mount,
            "/VolumeDriver.Unmount": self.unmount,
        }

    def start(self) -> None:
        """Load the saved mount IDs and drop those of volumes the kernel does not have mounted."""
        self.mount_ids.load()
        inventory = read_inventory(self.ctx)
        dropped = self.mount_ids.reconcile(volume.name for volume in inventory.volumes if volume.mounts)
        for name in dropped:
            log.info("volume %s is not mounted any more; dropped its saved mount IDs", name)

    def handle(self, path: str, body: dict) -> tuple[int, dict]:
        """Run the request for ``path`` and return (HTTP status, JSON answer).

        An ``LvmvolError`` becomes ``{"Err": message}`` with status 500, as
        the CLI would print it. An unknown path gets status 404.
        """
        request = path.lstrip("/")
        name = body.get("Name") if isinstance(body, dict) else None
        label = f"{request} {name}" if name else request
        try:
            if not isinstance(body, dict):
                raise InvalidInput("the request body is not a JSON object", "send a JSON object")
            if path in self.read_only_handlers:
                answer = self.read_only_handlers[path](body)
            elif path in self.mutating_handlers:
                with self.mutation_guard(request):
                    answer = self.mutating_handlers[path](body)
            else:
                log.warning("%s: unknown request", label)
                return 404, {"Err": f"unknown request {path!r}; lvmvol implements VolumeDriver"}
        except LvmvolError as error:
            log.error("%s: failed: %s", label, error)
            return 500, {"Err": str(error)}
        except Exception as error:  # noqa: BLE001 - any failure must reach Docker as Err
            log.exception("%s: failed unexpectedly", label)
            return 500, {"Err": f"lvmvol failed unexpectedly: {type(error).__name__}: {error}"}
        log.info("%s: ok", label)
        return 200, answer

    # Read-only requests.

    def activate(self, body: dict) -> dict:
        return {"Implements": ["VolumeDriver"]}

    def capabilities(self, body: dict) -> dict:
        return {"Capabilities": {"Scope": "local"}}

    def list(self, body: dict) -> dict:
        inventory = read_inventory(self.ctx)
        entries = [
            {"Name": volume.name, "Mountpoint": self._mountpoint(volume)}
            for volume in inventory.volumes
            if not volume.incomplete
        ]
        return {"Volumes": entries, "Err": ""}

    def get(self, body: dict) -> dict:
        volume = read_inventory(self.ctx).volume(_volume_name(body))
        answer = {"Name": volume.name, "Mountpoint": self._mountpoint(volume)}
        if volume.created is not None:
            answer["CreatedAt"] = volume.created.isoformat()
        answer["Status"] = {
            "vg": volume.vg,
            "pool": volume.lv.pool,
            "size_bytes": volume.lv.size,
            "filesystem": volume.filesystem,
            "encrypted": volume.encrypted,
            "origin": volume.origin,
            "mounted": bool(volume.mounts),
            "mount_ids": len(self.mount_ids.ids_of(volume.name)),
        }
        return {"Volume": answer, "Err": ""}

    def path(self, body: dict) -> dict:
        volume = read_inventory(self.ctx).volume(_volume_name(body))
        return {"Mountpoint": self._mountpoint(volume), "Err": ""}

    # Requests that change the system; ``handle`` holds the mutation guard around them.

    def create(self, body: dict) -> dict:
        name = _volume_name(body)
        options = parse_create_options(body.get("Opts"))

        if options.snapshot is not None:
            self._create_snapshot(name, options)
            return OK
        inventory = read_inventory(self.ctx)
        if options.size is None:
            if inventory.find_volume(name) is not None and _only_vg(options):
                return OK  # an existing lvmvol volume, given to Docker by name
            raise InvalidInput(f"volume {name!r} needs a size", "pass --opt size=SIZE, such as size=100M")
        key = Key(path=validate_key_file(options.key_file)) if options.key_file else None
        volumes.create_volume(
            self.ctx,
            name,
            options.size,
            options.pool_spec() or _pool_in_vg(inventory, options.vg),
            options.filesystem,
            encrypt=options.encrypt,
            key=key,
        )
        return OK

    def _create_snapshot(self, name: str, options: CreateOptions) -> None:
        """Take a thin snapshot; options besides ``snapshot`` must agree with the origin."""
        inventory = read_inventory(self.ctx)
        origin = inventory.volume(options.snapshot_source())
        _check_matches_origin(origin, options, inventory)
        snapshots.create_snapshot(self.ctx, origin.full_name, name)

    def remove(self, body: dict) -> dict:
        name = _volume_name(body)
        ids = self.mount_ids.ids_of(name)
        if ids:
            raise Conflict(
                f"volume {name} is mounted for {len(ids)} container(s)",
                "stop and remove those containers first",
            )
        removal.remove_volumes(self.ctx, [name], force=False)
        self.mount_ids.forget(name)
        return OK

    def mount(self, body: dict) -> dict:
        name = _volume_name(body)
        mount_id = _mount_id(body)
        # Read-write also for snapshots: Docker applies a container's ":ro" itself.
        outcome = mounting.mount_volume(self.ctx, name, read_only=False)

        self.mount_ids.add(name, mount_id)
        log.info("volume %s mounted for ID %s (%d ID(s))", name, mount_id, len(self.mount_ids.ids_of(name)))
        return {"Mountpoint": outcome.details["mountpoint"], "Err": ""}

    def unmount(self, body: dict) -> dict:
        name = _volume_name(body)
        mount_id = _mount_id(body)
        known = self.mount_ids.ids_of(name)
        if known and mount_id not in known:
            log.warning("volume %s: Unmount for unknown ID %s; %d other ID(s) still use it", name, mount_id, len(known))
            return OK

        remaining = self.mount_ids.remove(name, mount_id)
        if remaining:
            log.info("volume %s stays mounted for %d other ID(s)", name, len(remaining))
            return OK
        mounting.umount_volume(self.ctx, name)
        return OK

    def _mountpoint(self, volume: Volume) -> str:
        """Return where the volume is mounted, else where Mount would mount it (mount_root/NAME)."""
        return volume.mountpoint or mounting.default_mountpoint(self.ctx, volume.name)


def _volume_name(body: dict) -> str:
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise InvalidInput("the request has no volume name", "send {\"Name\": NAME}")
    return name


def _mount_id(body: dict) -> str:
    mount_id = body.get("ID")
    if not isinstance(mount_id, str) or not mount_id:
        raise InvalidInput("the request has no mount ID", "send {\"Name\": NAME, \"ID\": ID}")
    return mount_id


def _only_vg(options: CreateOptions) -> bool:
    """True when the options ask for nothing but possibly ``vg``, as for adopting an existing volume."""
    return options == CreateOptions(vg=options.vg)


def _pool_in_vg(inventory: Inventory, vg: str | None) -> str | None:
    """Return the only lvmvol pool in ``vg`` as VG/NAME; None without ``vg`` (the default pool)."""
    if vg is None:
        return None
    pools = [pool for pool in inventory.pools if pool.vg == vg]
    if len(pools) == 1:
        return pools[0].full_name
    if not pools:
        raise NotFound(f"no lvmvol thin pool in volume group {vg!r}", "check the vg option, or create a pool there")
    names = ", ".join(pool.name for pool in pools)
    raise InvalidInput(f"volume group {vg!r} contains several pools ({names})", "add --opt thinpool=NAME")


def _check_matches_origin(origin: Volume, options: CreateOptions, inventory: Inventory) -> None:
    """Raise ``InvalidInput`` when an option given with ``snapshot`` differs from the origin.

    A thin snapshot has its origin's size, pool, filesystem and key, so
    these options can only repeat them. Scripts that pass them along with
    ``snapshot`` keep working when they match.
    """
    differences = []
    if options.pool is not None and options.pool != origin.lv.pool:
        differences.append(f"thinpool {options.pool!r}, but {origin.name} is in pool {origin.lv.pool!r}")
    if options.filesystem is not None and options.filesystem != origin.filesystem:
        differences.append(f"fs {options.filesystem!r}, but {origin.name} has {origin.filesystem!r}")
    if options.size is not None:
        pool = inventory.pool_of(origin)
        extent = pool.lv.extent_size if pool is not None else 1
        if round_up(options.size, extent) != origin.lv.size:
            differences.append(f"size {format_size(options.size)}, but {origin.name} has {format_size(origin.lv.size)}")
    if options.encrypt and not origin.encrypted:
        differences.append(f"crypt or keyfile, but {origin.name} is not encrypted")
    if options.key_file is not None and origin.encrypted:
        key = validate_key_file(options.key_file)
        if key != origin.key_source:
            differences.append(f"keyfile {key}, but {origin.name} opens with {origin.key_source}")
    if differences:
        raise InvalidInput(
            f"snapshot of {origin.name}: {'; '.join(differences)}",
            "a snapshot takes these from its origin; drop the options or make them match",
        )
