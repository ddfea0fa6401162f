"""Boot mounts: recording in a volume's LV tags where ``lvmvol activate`` mounts it.

The record is the LV tag ``lvmvol.mountpoint=PATH``, with the requested
mount options in ``lvmvol.mountopts=OPTS``, so it moves with the volume
group and needs no edit to /etc/fstab.
"""

from __future__ import annotations

import os

from lvmvol import lvm, tags
from lvmvol.ops.context import Context
from lvmvol.ops.inventory import Volume, read_inventory


def _boot_mount_tags(volume: Volume) -> list[str]:
    prefixes = (tags.PREFIX + tags.MOUNTPOINT + "=", tags.PREFIX + tags.MOUNT_OPTIONS + "=")
    return [tag for tag in volume.lv.tags if tag.startswith(prefixes)]


def record_boot_mount(ctx: Context, spec: str, mountpoint: str, options: str = "") -> bool:
    """Record that volume ``spec`` is mounted at ``mountpoint`` with ``options`` at boot; return whether a tag changed.

    ``options`` are the ones the mount was requested with (comma-separated),
    not the configured defaults, which activate applies again. A mountpoint
    and options recorded before are replaced.
    """
    volume = read_inventory(ctx).volume(spec)
    expected = [tags.setting_tag(tags.MOUNTPOINT, os.path.abspath(mountpoint))]
    if options:
        expected.append(tags.setting_tag(tags.MOUNT_OPTIONS, options))
    current = _boot_mount_tags(volume)
    if sorted(current) == sorted(expected):
        return False

    stale = [tag for tag in current if tag not in expected]
    add = [tag for tag in expected if tag not in current]
    lvm.change_tags(ctx.runner, volume.vg, volume.name, add=add, remove=stale)
    return True


def clear_boot_mount(ctx: Context, spec: str) -> bool:
    """Remove the boot mount record of volume ``spec``; return whether there was one."""
    volume = read_inventory(ctx).volume(spec)
    current = _boot_mount_tags(volume)
    if not current:
        return False
    lvm.change_tags(ctx.runner, volume.vg, volume.name, add=[], remove=current)
    return True
