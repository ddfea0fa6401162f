"""``lvmvol check``: find what does not add up after a crash or a manual change, and repair it.

Each problem says what was found and what ``--repair`` does about it, or
why it does nothing and what the administrator can do. Only things that
carry lvmvol's marks are touched: LVs with lvmvol tags, dm-crypt mappings
with lvmvol's ``luks-VG-LV`` names in an existing VG, directories under
``mount_root`` and key files in ``key_dir``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from lvmvol import crypt, devices, lvm, tags
from lvmvol.errors import LvmvolError
from lvmvol.mounts import MountEntry, mounts_of, read_mount_table, umount
from lvmvol.names import CRYPT_MAPPING_PREFIX, crypt_mapping_name, dm_name, split_dm_name
from lvmvol.ops.context import Context
from lvmvol.ops.inventory import Inventory, Volume, read_inventory
from lvmvol.ops.removal import remove_volumes

KEY_SUFFIX = ".key"


@dataclass
class Problem:
    """One thing that does not add up, and what ``--repair`` does about it."""

    kind: str
    subject: str
    detail: str
    # What --repair does, as a sentence; None when it does nothing.
    repair: str | None = None
    # What the administrator can do when --repair does nothing.
    hint: str | None = None
    # What the repair acts on: a volume, a mapping, a path, a dm name.
    target: str = ""
    mountpoints: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "detail": self.detail,
            "repair": self.repair,
            "hint": self.hint,
        }


def find_problems(ctx: Context) -> list[Problem]:
    """Return every problem found, read without changing anything."""
    inventory = read_inventory(ctx)
    vg_list = lvm.list_vgs(ctx.runner)
    vg_names = {vg.name for vg in vg_list}
    mount_table = read_mount_table()

    # Suspended devices come first: their repair (resume) unblocks the
    # lvm2 and cryptsetup commands that the other repairs run.
    problems = _suspended_problems(ctx, inventory)
    problems += _volume_problems(ctx, inventory)
    problems += _mapping_problems(ctx, inventory, vg_names, mount_table)
    problems += _mountpoint_problems(ctx, mount_table)
    problems += _key_file_problems(ctx, inventory, vg_names)
    problems += _loop_file_problems(ctx, vg_list)
    return problems


def _volume_problems(ctx: Context, inventory: Inventory) -> list[Problem]:
    found = []
    for volume in inventory.volumes:
        if volume.incomplete:
            found.append(
                Problem(
                    "incomplete-volume",
                    volume.full_name,
                    f"tagged {tags.INCOMPLETE}: the 'volume create' that made it did not finish",
                    repair=f"remove volume {volume.full_name}",
                    hint=f"or finish it by running the same 'lvmvol volume create {volume.name}' again",
                    target=volume.full_name,
                )
            )
        elif volume.encrypting:
            found.append(
                Problem(
                    "unfinished-encryption",
                    volume.full_name,
                    "its in-place encryption did not finish, so part of it is still plain",
                    hint=f"finish it with 'lvmvol volume encrypt {volume.name}'",
                )
            )
        else:
            missing = _missing_filesystem(ctx, volume)
            if missing:
                found.append(
                    Problem(
                        "missing-filesystem",
                        volume.full_name,
                        missing,
                        repair=f"remove volume {volume.full_name} with whatever data it holds",
                        target=volume.full_name,
                    )
                )
    return found


def _missing_filesystem(ctx: Context, volume: Volume) -> str | None:
    """Return what blkid finds instead of the filesystem the volume's tags name, or None when it matches.

    Inactive volumes are not probed, because probing would mean activating
    them, and suspended ones neither, because the read would block.
    """
    if volume.filesystem == "none" or not volume.lv.active or not volume.device:
        return None
    if volume.lv.attr[4:5] == "s":
        return None  # reading a suspended device blocks; it is reported as suspended
    expected = "crypto_LUKS" if volume.encrypted else volume.filesystem
    found = devices.signatures(ctx.runner, volume.device).get("TYPE", "")
    if found == expected and volume.encrypted and volume.mapping_open:
        expected = volume.filesystem
        found = devices.signatures(ctx.runner, volume.mapping_device).get("TYPE", "")
    if found == expected:
        return None
    return f"tagged {tags.PREFIX}{tags.FILESYSTEM}={volume.filesystem} but blkid finds {found or 'no signature'} where {expected} belongs"


def _mapping_problems(ctx: Context, inventory: Inventory, vg_names: set[str], mount_table: list[MountEntry]) -> list[Problem]:
    lv_mappings = {crypt_mapping_name(lv.vg, lv.name): lv for lv in inventory.all_lvs}
    volumes = {volume.mapping: volume for volume in inventory.volumes if volume.encrypted}
    found = []
    for name in devices.crypt_mapping_names(ctx.runner):
        if not name.startswith(CRYPT_MAPPING_PREFIX):
            continue
        path = f"/dev/mapper/{name}"
        mountpoints = _mountpoints_of_path(path, mount_table)
        if name in volumes:
            volume = volumes[name]
            if volume.mounts or mountpoints or _open_count(ctx, name) > 0:
                continue
            found.append(
                Problem(
                    "idle-mapping",
                    name,
                    f"dm-crypt mapping of volume {volume.full_name} is open but nothing is mounted on it or uses it",
                    repair=f"close mapping {name}",
                    target=name,
                )
            )
            continue
        if name in lv_mappings:
            continue  # a mapping of an LV lvmvol does not manage: not lvmvol's
        parts = split_dm_name(name[len(CRYPT_MAPPING_PREFIX):])
        if parts is None or parts[0] not in vg_names:
            continue  # not named like an lvmvol mapping of a VG on this host
        action = f"close mapping {name}"
        if mountpoints:
            action = f"unmount {', '.join(mountpoints)}, then close mapping {name}"
        found.append(
            Problem(
                "orphan-mapping",
                name,
                f"dm-crypt mapping of {parts[0]}/{parts[1]}, which no longer exists",
                repair=action,
                target=name,
                mountpoints=mountpoints,
            )
        )
    return found


def _mountpoints_of_path(path: str, mount_table: list[MountEntry]) -> list[str]:
    try:
        rdev = os.stat(path).st_rdev
    except OSError:
        return []
    return [entry.mountpoint for entry in mounts_of(mount_table, os.major(rdev), os.minor(rdev))]


def _open_count(ctx: Context, mapping: str) -> int:
    try:
        device = devices.block_device(f"/dev/mapper/{mapping}")
    except LvmvolError:
        return 0
    return devices.dm_open_count(ctx.runner, device)


def _mountpoint_problems(ctx: Context, mount_table: list[MountEntry]) -> list[Problem]:
    root = ctx.config.mount_root
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    mounted = {entry.mountpoint for entry in mount_table}
    found = []
    for name in names:
        path = os.path.join(root, name)
        if os.path.islink(path) or not os.path.isdir(path) or path in mounted:
            continue
        if os.listdir(path):
            found.append(
                Problem(
                    "unmounted-directory",
                    path,
                    "directory under mount_root with nothing mounted on it, and not empty",
                    hint="its files are on the filesystem below mount_root; move them away, then remove the directory",
                )
            )
        else:
            found.append(
                Problem(
                    "empty-mountpoint",
                    path,
                    "empty directory under mount_root with nothing mounted on it",
                    repair=f"remove directory {path}",
                    target=path,
                )
            )
    return found


def _key_file_problems(ctx: Context, inventory: Inventory, vg_names: set[str]) -> list[Problem]:
    """Find generated key files whose volume is gone.

    Only a key file named after an LV of a VG that exists is judged, so the
    keys of a VG whose disks are not attached are never taken for orphans.
    """
    key_dir = ctx.config.key_dir
    try:
        names = sorted(os.listdir(key_dir))
    except OSError:
        return []
    recorded = {volume.key_source for volume in inventory.volumes}
    existing = {(lv.vg, lv.name) for lv in inventory.all_lvs}
    found = []
    for name in names:
        path = os.path.join(key_dir, name)
        if not (name.startswith(CRYPT_MAPPING_PREFIX) and name.endswith(KEY_SUFFIX)) or path in recorded:
            continue
        parts = split_dm_name(name[len(CRYPT_MAPPING_PREFIX):-len(KEY_SUFFIX)])
        if parts is None or parts[0] not in vg_names or parts in existing:
            continue
        found.append(
            Problem(
                "orphan-key-file",
                path,
                f"key file generated for {parts[0]}/{parts[1]}, which no longer exists",
                repair=f"delete key file {path}",
                target=path,
            )
        )
    return found


def _loop_file_problems(ctx: Context, vg_list: list[lvm.VolumeGroup]) -> list[Problem]:
    found = []
    for vg in vg_list:
        for path in tags.setting_values(vg.tags, tags.LOOP_FILE):
            if os.path.exists(path):
                continue
            loops = devices.loop_devices_of(ctx.runner, path)
            still = f"; loop device {', '.join(loops)} still holds its data until it is detached" if loops else ""
            found.append(
                Problem(
                    "missing-loop-file",
                    vg.name,
                    f"backing file {path} of loop-backed volume group {vg.name} is missing{still}",
                    hint=(
                        f"copy the data back with 'dd if={loops[0]} of={path} conv=sparse' before anything detaches it"
                        if loops
                        else f"restore {path} from a backup, or remove the volume group with vgremove"
                    ),
                )
            )
    return found


def _suspended_problems(ctx: Context, inventory: Inventory) -> list[Problem]:
    """Find suspended device-mapper devices of lvmvol's pools, volumes and mappings."""
    prefixes = {dm_name(pool.vg, "") for pool in inventory.pools}
    mappings = {volume.mapping for volume in inventory.volumes if volume.encrypted}
    found = []
    for device in devices.list_dm_devices(ctx.runner):
        if not device.suspended:
            continue
        if device.name in mappings or any(device.name.startswith(prefix) for prefix in prefixes):
            found.append(
                Problem(
                    "suspended-device",
                    device.name,
                    "device-mapper device is suspended, so I/O to it and its filesystem blocks",
                    repair=f"resume {device.name} (dmsetup resume)",
                    target=device.name,
                )
            )
    return found


def repair_problem(ctx: Context, problem: Problem) -> None:
    """Carry out ``problem.repair``; raises ``LvmvolError`` when it fails."""
    if problem.kind in ("incomplete-volume", "missing-filesystem"):
        remove_volumes(ctx, [problem.target], force=True, confirm=lambda question: True)
    elif problem.kind in ("orphan-mapping", "idle-mapping"):
        for mountpoint in sorted(problem.mountpoints, key=len, reverse=True):
            umount(ctx.runner, mountpoint)
        crypt.close_mapping(ctx.runner, problem.target)
    elif problem.kind == "empty-mountpoint":
        if not ctx.dry_run:
            os.rmdir(problem.target)
    elif problem.kind == "orphan-key-file":
        if not ctx.dry_run:
            os.unlink(problem.target)
    elif problem.kind == "suspended-device":
        devices.resume_dm_device(ctx.runner, problem.target)
    else:
        raise ValueError(f"no repair for problem kind {problem.kind!r}")
