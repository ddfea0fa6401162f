"""Mounting and unmounting volumes, opening and closing their dm-crypt mappings."""

from __future__ import annotations

import errno
import os
import stat

from lvmvol import fs, lvm
from lvmvol.crypt import Key
from lvmvol.errors import CommandError, Conflict, InvalidInput, LvmvolError
from lvmvol.mounts import MountEntry, merge_options, mount, read_mount_table, split_options, umount
from lvmvol.names import RESTORE_COPY_SUFFIX, lv_device_path
from lvmvol.processes import users_of_filesystem
from lvmvol.ops.context import Context, Outcome, wait_for_device
from lvmvol.ops.encryption import close_volume, open_volume, recorded_key
from lvmvol.ops.inventory import Volume, read_inventory


def ensure_active(ctx: Context, volume: Volume) -> str:
    """Activate ``volume`` if needed, wait for its node, and return the device path."""
    device = lv_device_path(volume.vg, volume.name)
    if not volume.lv.active:
        lvm.activate(ctx.runner, volume.vg, volume.name)
    wait_for_device(ctx, device)
    return device


def default_mountpoint(ctx: Context, name: str) -> str:
    return os.path.join(ctx.config.mount_root, name)


def mount_volume(
    ctx: Context,
    spec: str,
    mountpoint: str | None = None,
    key: Key | None = None,
    allow_discards: bool | None = None,
    read_only: bool | None = None,
    options: str | None = None,
) -> Outcome:
    """Mount a volume at ``mountpoint`` (default: mount_root/NAME); a no-op when it already is.

    ``read_only`` None means read-only for a snapshot and read-write for
    other volumes. ``options`` (comma-separated) are merged over the
    configured ``mount_options``. A mountpoint that lvmvol creates gets mode
    0700; an existing one must be an empty directory that nothing is mounted
    on. An encrypted volume's mapping is opened first, with ``key`` or the
    recorded key file; if the mount then fails, the mapping is closed again.
    """
    requested = split_options(options or "", "--options")
    inventory = read_inventory(ctx)
    volume = inventory.volume(spec)
    _check_mountable(volume, key, allow_discards)
    explicit = read_only is not None or any(option in ("ro", "rw") for option in requested)
    read_only = _read_only(volume, read_only, requested)
    target = _mount_target(ctx, volume.name, mountpoint)
    details = mount_details(ctx, volume.filesystem, target, read_only, requested)

    current = next((entry for entry in volume.mounts if entry.mountpoint == target), None)
    if current is not None:
        _check_same_access(volume, current, read_only, explicit)
        return Outcome(volume.name, False, details)
    if volume.mounts:
        raise Conflict(
            f"volume {volume.full_name} is already mounted at {volume.mountpoint}",
            f"unmount it first with: lvmvol volume umount {volume.name}",
        )
    _check_mountpoint_free(target)

    opened_here = volume.encrypted and not volume.mapping_open
    if opened_here:
        # Check the key before activation, so a missing key changes nothing.
        key = recorded_key(volume, key)
    device = ensure_active(ctx, volume)
    if volume.encrypted:
        device = open_volume(ctx, volume, device, key, allow_discards)
    created = None
    try:
        created = _make_mountpoint(ctx, target)
        mount(ctx.runner, device, target, volume.filesystem, details["options"])
    except LvmvolError:
        _remove_made_directories(target, created)
        if opened_here:
            close_volume(ctx, read_inventory(ctx).volume(volume.full_name))
        raise

    if not ctx.dry_run:
        _verify_mounted(target)
    return Outcome(volume.name, True, details)


def check_mount_target(ctx: Context, volume: Volume | None, name: str, mountpoint: str | None) -> str:
    """Check the path where a new (``volume`` None) or existing volume would be mounted, and return it.

    ``volume create --mount`` runs the checks of ``mount_volume`` with this
    before it changes anything. It raises for an empty or relative path and
    for a path under /proc, /sys or /dev, also through a symbolic link in a
    parent. It also raises for a symbolic link, a file or a path under one,
    a directory that is not empty, another filesystem's mountpoint, and a
    missing path whose parent is not writable. A volume already mounted
    there passes.
    """
    target = _mount_target(ctx, name, mountpoint)
    if volume is not None and any(entry.mountpoint == target for entry in volume.mounts):
        return target
    if volume is not None and volume.mounts:
        raise Conflict(
            f"volume {volume.full_name} is already mounted at {volume.mountpoint}",
            f"unmount it first with: lvmvol volume umount {volume.name}",
        )
    _check_mountpoint_free(target)
    return target


# Kernel filesystems, where a mount would hide or break the kernel's own files.
KERNEL_FILESYSTEM_ROOTS = ("/proc", "/sys", "/dev")


def check_mountpoint_path(path: str) -> None:
    """Raise ``InvalidInput`` for a relative mountpoint or one under /proc, /sys or /dev.

    A relative path would depend on the directory a script happens to run
    in, so it is rejected rather than resolved.
    """
    if not os.path.isabs(path):
        raise InvalidInput(f"mountpoint {path!r} is a relative path", "give an absolute path, such as /srv/data")
    for root in KERNEL_FILESYSTEM_ROOTS:
        if path == root or path.startswith(root + "/"):
            raise InvalidInput(
                f"mountpoint {path} is under {root}, which the kernel manages",
                "choose a directory on a regular filesystem, such as one under mount_root",
            )


def _check_mountable(volume: Volume, key: Key | None, allow_discards: bool | None) -> None:
    """Raise unless ``volume`` has a finished filesystem that lvmvol can mount with these key options."""
    if volume.filesystem == "none":
        raise InvalidInput(
            f"volume {volume.full_name} has no filesystem (created with --fs none)",
            f"use its device {volume.mapping_device or volume.device} directly",
        )
    if volume.incomplete:
        raise Conflict(
            f"volume {volume.full_name} was not finished (its filesystem may be missing)",
            "run the same 'lvmvol volume create' again to finish it",
        )
    if volume.encrypting:
        raise Conflict(
            f"the encryption of volume {volume.full_name} is unfinished, so part of it is still plain",
            f"finish it with 'lvmvol volume encrypt {volume.name}'",
        )
    if volume.restoring:
        source = volume.restoring_from or f"{volume.name.removesuffix(RESTORE_COPY_SUFFIX)} --keep-snapshot"
        raise Conflict(
            f"a restore involving volume {volume.full_name} is unfinished",
            f"finish it with 'lvmvol volume restore {source}'",
        )
    if not volume.encrypted and (key is not None or allow_discards):
        raise InvalidInput(f"volume {volume.full_name} is not encrypted; drop the key and discard options")


def _read_only(volume: Volume, read_only: bool | None, requested: list[str]) -> bool:
    """Decide read-only or read-write from the flags, ``ro``/``rw`` in --options, and the default.

    The default is read-only for a snapshot (a volume with an origin), so
    a backup never writes to it by accident, and for a read-only LV.
    """
    in_options = [option for option in requested if option in ("ro", "rw")]
    if read_only is not None and in_options and (in_options[-1] == "ro") != read_only:
        flag = "--read-only" if read_only else "--read-write"
        raise InvalidInput(f"{flag} and --options {in_options[-1]} exclude each other", "pass one of them")
    if read_only is None and in_options:
        read_only = in_options[-1] == "ro"
    if volume.lv.read_only:
        if read_only is False:
            raise Conflict(
                f"volume {volume.full_name} is a read-only LV and cannot be mounted read-write",
                "drop --read-write",
            )
        return True
    if read_only is None:
        # NOTE: lvm2 records no origin for a snapshot whose origin was
        # removed, so such a snapshot mounts read-write by default.
        return volume.origin is not None
    return read_only


def _check_same_access(volume: Volume, entry: MountEntry, read_only: bool, explicit: bool) -> None:
    """Raise ``Conflict`` when an explicit ro/rw request differs from the mount that exists."""
    # NOTE: only ro/rw is compared; a mount with other options is reported
    # unchanged, because the kernel shows options in its own form.
    mounted_read_only = "ro" in entry.options.split(",")
    if explicit and mounted_read_only != read_only:
        state = "read-only" if mounted_read_only else "read-write"
        raise Conflict(
            f"volume {volume.full_name} is already mounted {state} at {entry.mountpoint}",
            f"unmount it first with 'lvmvol volume umount {volume.name}' to mount it the other way",
        )


def mount_details(
    ctx: Context, filesystem: str, target: str, read_only: bool, requested: list[str] | None = None
) -> dict:
    """Return the mountpoint, read-only flag and options for mounting ``filesystem`` at ``target``.

    The options are the configured ``mount_options``, then ``requested``,
    then ro or rw, then what the filesystem needs (nouuid for XFS snapshots).
    """
    options = merge_options(
        split_options(ctx.config.mount_options, "the mount_options setting"),
        requested or [],
        ["ro" if read_only else "rw"],
        fs.mount_options(filesystem, read_only),
    )
    return {"mountpoint": target, "read_only": read_only, "options": options}


def _mount_target(ctx: Context, name: str, mountpoint: str | None) -> str:
    """Return the absolute mountpoint for volume ``name``, with its parents resolved, or raise ``InvalidInput``.

    The path is checked again once resolved, so a symbolic link in a parent
    cannot lead the mount under /proc, /sys or /dev.
    """
    if mountpoint == "":
        # An unset shell variable, as in --mountpoint "$DIR": not a request for the default.
        raise InvalidInput(
            "the mountpoint is an empty string", "give an absolute path, or leave it out for mount_root/NAME"
        )
    target = os.path.normpath(mountpoint or default_mountpoint(ctx, name))
    check_mountpoint_path(target)
    target = _resolve_parent(target)
    check_mountpoint_path(target)
    return target


def _resolve_parent(path: str) -> str:
    """Resolve symbolic links in the parent directories of ``path``, as mount(8) does, but not in its last part."""
    parent, name = os.path.split(path)
    return os.path.join(os.path.realpath(parent), name)


def _check_mountpoint_free(target: str) -> None:
    """Raise unless ``target`` is missing or an empty directory that nothing is mounted on."""
    occupied = [entry for entry in read_mount_table() if entry.mountpoint == target]
    if occupied:
        raise Conflict(
            f"{target} is already a mountpoint of {occupied[-1].source}",
            "choose another mountpoint",
        )
    try:
        status = os.lstat(target)
    except FileNotFoundError:
        _check_can_make(target)
        return
    except NotADirectoryError:
        raise InvalidInput(
            f"mountpoint {target} is under a file, not a directory", "choose a path whose parents are directories"
        ) from None
    if stat.S_ISLNK(status.st_mode):
        raise InvalidInput(
            f"mountpoint {target} is a symbolic link",
            f"pass the directory it points to ({os.path.realpath(target)}) or another path",
        )
    if not stat.S_ISDIR(status.st_mode):
        raise InvalidInput(f"mountpoint {target} exists and is not a directory")
    if os.listdir(target):
        raise Conflict(
            f"mountpoint {target} is a directory that is not empty, and the mount would hide its files",
            "empty it or choose another mountpoint",
        )


def _check_can_make(target: str) -> None:
    """Raise ``InvalidInput`` unless the closest existing parent of the missing ``target`` is writable.

    access(2) reports a read-only filesystem (EROFS) even to root, so this
    catches it before a volume is made rather than at mkdir.
    """
    parent = os.path.dirname(target)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInput(
            f"mountpoint {target} cannot be created: {parent} is not writable (read-only filesystem or permissions)",
            "choose a mountpoint on a writable filesystem, or create the directory first",
        )


def _make_mountpoint(ctx: Context, target: str) -> str | None:
    """Create ``target`` with mode 0700 unless it exists; return the outermost directory created here, if any."""
    if ctx.dry_run or os.path.isdir(target):
        return None
    outermost = target
    while not os.path.isdir(os.path.dirname(outermost)):
        outermost = os.path.dirname(outermost)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.mkdir(target, mode=0o700)
        # mkdir applies the umask; the mode is meant exactly.
        os.chmod(target, 0o700)
    except OSError as error:
        # The checks before acting passed, so something changed since: a
        # remount read-only, a full filesystem, another program's directory.
        if error.errno == errno.EEXIST:
            # The directory is the other program's, and the parents made here now contain it, so all of it stays.
            raise Conflict(
                f"mountpoint {target} appeared while lvmvol was creating it",
                "run the command again once whatever made it is done",
            ) from None
        _remove_made_directories(target, outermost)
        raise InvalidInput(
            f"cannot create mountpoint {target}: {error.strerror}",
            "choose a mountpoint on a writable filesystem, or create the directory first",
        ) from None
    return outermost


def _remove_made_directories(target: str, outermost: str | None) -> None:
    """Remove ``target`` and its parents up to ``outermost``, the directories ``_make_mountpoint`` created."""
    if outermost is None:
        return
    path = target
    while True:
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass  # a creation that failed part way made only the outer directories
        except OSError:
            return  # something else put a file there meanwhile: leave it
        if path == outermost:
            return
        path = os.path.dirname(path)


def _verify_mounted(target: str) -> None:
    if not any(entry.mountpoint == target for entry in read_mount_table()):
        raise Conflict(
            f"mount reported success but {target} is not in the mount table",
            "check 'dmesg' for the kernel's reason",
        )


def unmount_all(ctx: Context, mounts: list[MountEntry], lazy: bool = False) -> list[str]:
    """Unmount ``mounts``, deepest first, and remove empty mountpoints under the mount root.

    A busy filesystem raises ``Conflict`` naming the processes that use it.
    """
    entries = sorted(mounts, key=lambda entry: len(entry.mountpoint), reverse=True)
    for entry in entries:
        try:
            umount(ctx.runner, entry.mountpoint, lazy)
        except CommandError as error:
            users = users_of_filesystem(entry.major, entry.minor)
            if not users:
                error.hint = f"check what keeps {entry.mountpoint} busy with 'fuser -vm {entry.mountpoint}'"
                raise
            raise Conflict(
                f"{entry.mountpoint} is busy: {'; '.join(user.describe() for user in users)}",
                "stop those processes or move them out of it, then run the command again; "
                "--lazy detaches it now and frees it when they finish",
            ) from None
        _remove_empty_mountpoint(ctx, entry.mountpoint)
    return [entry.mountpoint for entry in entries]


def umount_volume(ctx: Context, spec: str, lazy: bool = False) -> Outcome:
    """Unmount every mount of a volume in this mount namespace and close its dm-crypt mapping.

    A no-op when nothing is mounted or open. An empty mountpoint directory
    under the configured mount root is removed too. With ``lazy``, a busy
    filesystem is detached at once and freed when its last user finishes;
    an encrypted volume's mapping then stays open until the command runs
    again after that.
    """
    inventory = read_inventory(ctx)
    volume = inventory.volume(spec)
    mountpoints = unmount_all(ctx, volume.mounts, lazy)
    notes = []
    if lazy and not ctx.dry_run:
        for entry in volume.mounts:
            users = users_of_filesystem(entry.major, entry.minor)
            if users:
                notes.append(
                    f"{entry.mountpoint} is detached, and the filesystem stays in use until these finish: "
                    + "; ".join(user.describe() for user in users)
                )
    closed = False
    if volume.encrypted:
        try:
            closed = close_volume(ctx, volume)
        except Conflict:
            if not (lazy and notes):
                raise
            notes.append(
                f"the dm-crypt mapping {volume.mapping} stays open while the filesystem is in use; "
                f"run 'lvmvol volume umount {volume.name}' again afterwards to close it"
            )
    details = {"mountpoints": mountpoints, "persistent_mountpoint": volume.persistent_mountpoint}
    if volume.encrypted:
        details["mapping_closed"] = closed
    return Outcome(volume.name, bool(mountpoints) or closed, details, notes)


def _remove_empty_mountpoint(ctx: Context, mountpoint: str) -> None:
    root = os.path.abspath(ctx.config.mount_root)
    if ctx.dry_run or os.path.dirname(os.path.abspath(mountpoint)) != root:
        return
    try:
        os.rmdir(mountpoint)
    except OSError:
        pass  # not empty, or already gone: leave it
