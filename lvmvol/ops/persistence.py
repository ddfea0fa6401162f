"""Boot mounts: recording in a volume's LV tags where ``lvmvol activate`` mounts it.

The record is the LV tag ``lvmvol.mountpoint=PATH``, so it moves with the
volume group and needs no edit to /etc/fstab.
"""

from __future__ import annotations

import os

from lvmvol import lvm, tags
from lvmvol.ops.context import Context
from lvmvol.ops.inventory import Volume, read_inventory


def _mountpoint_tags(volume: Volume) -> list[str]:
    prefix = tags.PREFIX + tags.MOUNTPOINT + "="
    return [tag for tag in volume.lv.tags if tag.startswith(prefix)]


def record_boot_mount(ctx: Context, spec: str, mountpoint: str) -> bool:
    """Record that volume ``spec`` is mounted at ``mountpoint`` at boot; return whether a tag changed.

    A mountpoint recorded before is replaced.
    """
    volume = read_inventory(ctx).volume(spec)
    expected_tag = tags.setting_tag(tags.MOUNTPOINT, os.path.abspath(mountpoint))
    current = _mountpoint_tags(volume)
    if current == [expected_tag]:
        return False

    # TODO: record the mount options too, once 'volume mount' takes them;
    # until then activate mounts with the filesystem's default options.
    stale = [tag for tag in current if tag != expected_tag]
    add = [expected_tag] if expected_tag not in current else []
    lvm.change_tags(ctx.runner, volume.vg, volume.name, add=add, remove=stale)
    return True


def clear_boot_mount(ctx: Context, spec: str) -> bool:
    """Remove the boot mount record of volume ``spec``; return whether there was one."""
    volume = read_inventory(ctx).volume(spec)
    current = _mountpoint_tags(volume)
    if not current:
        return False
    lvm.change_tags(ctx.runner, volume.vg, volume.name, add=[], remove=current)
    return True
