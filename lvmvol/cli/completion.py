"""Shell completion of live names: volumes, snapshots, pools and free block devices.

Click calls these ``shell_complete`` callbacks while the shell completes a
word. They read LVM through the inventory with a dry-run runner, so no
command that changes the system can run. They never take the command lock,
and return no names (instead of printing an error into the shell) when the
user is not root, lvm2 is missing or anything else fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING, Callable, Iterator

import click

from lvmvol.cli import common
from lvmvol.ops.context import Context

if TYPE_CHECKING:
    from pathlib import Path

    from click.shell_completion import CompletionItem

# Seconds one lvm2 report may take while the shell waits for completions.
COMPLETION_TIMEOUT = 5.0


def _completion_context(click_ctx: click.Context) -> Context | None:
    """Return a read-only operation context, or None when names cannot be read (not root)."""
    root = click_ctx.find_root()
    if root.obj and "context" in root.obj:
        return root.obj["context"]
    if common.effective_uid() != 0:
        return None
    config = common.load_config(root.params.get("config_path"))
    runner = common.Runner(timeout=min(config.command_timeout, COMPLETION_TIMEOUT), dry_run=True)
    return Context(config=config, runner=runner)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence lvmvol's log messages, which would land in the middle of the shell's command line."""
    logger = logging.getLogger("lvmvol")
    previous = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = previous


def _complete(read_names: Callable[[Context], list[tuple[str, str]]]):
    """Build a ``shell_complete`` callback from ``read_names(ctx)``, which returns (name, help) pairs."""

    def shell_complete(click_ctx: click.Context, parameter: click.Parameter, incomplete: str) -> list[CompletionItem]:
        # Imported here: every command line builds these callbacks, few run them.
        from click.shell_completion import CompletionItem

        with _quiet():
            try:
                ctx = _completion_context(click_ctx)
                if ctx is None:
                    return []
                names = read_names(ctx)
            except Exception:  # noqa: BLE001 - a failed completion must not print into the shell
                return []
        return [CompletionItem(name, help=text) for name, text in names if name.startswith(incomplete)]

    return shell_complete


def _volume_names(ctx: Context, snapshots_only: bool = False) -> list[tuple[str, str]]:
    """Return each volume's name (VG/NAME when the name is in several VGs) with its size and origin."""
    from lvmvol.ops.inventory import read_inventory
    from lvmvol.units import format_size

    volumes = read_inventory(ctx).volumes
    if snapshots_only:
        volumes = [volume for volume in volumes if volume.origin]
    names = []
    for name, volume in zip(common.unique_names(volumes), volumes):
        described = format_size(volume.lv.size)
        if volume.origin:
            described += f" snapshot of {volume.origin}"
        names.append((name, described))
    return names


def _snapshot_names(ctx: Context) -> list[tuple[str, str]]:
    return _volume_names(ctx, snapshots_only=True)


def _pool_names(ctx: Context) -> list[tuple[str, str]]:
    """Return each pool as NAME (unless the name is in several VGs) and as VG/NAME."""
    from lvmvol.ops.inventory import read_inventory
    from lvmvol.units import format_size

    pools = read_inventory(ctx).pools
    names = []
    for name, pool in zip(common.unique_names(pools), pools):
        described = format_size(pool.lv.size)
        names.append((name, described))
        if name != pool.full_name:
            names.append((pool.full_name, described))
    return names


def free_block_devices(ctx: Context, sys_block: str | Path = "/sys/class/block") -> list[tuple[str, str]]:
    """Return the block devices that 'pool init' could use, with their sizes.

    A device is free when it has a size, is writable, has no holders and no
    partitions, is not mounted, not swap and not an LVM physical volume.
    Device-mapper devices (LVs, crypt mappings), CD drives and RAM disks
    are left out. Everything is read from sysfs under ``sys_block``.
    """
    from pathlib import Path

    from lvmvol import devices, lvm
    from lvmvol.mounts import read_mount_table
    from lvmvol.units import format_size

    sys_block = Path(sys_block)

    mounted = {(entry.major, entry.minor) for entry in read_mount_table()}
    # PV names may be symbolic links such as /dev/mapper/NAME; compare kernel names.
    physical_volumes = {os.path.basename(os.path.realpath(pv.name)) for pv in lvm.list_pvs(ctx.runner)}

    found = []
    for entry in sorted(sys_block.iterdir()):
        if entry.name.startswith(("dm-", "sr", "ram", "zram")) or entry.name in physical_volumes:
            continue
        try:
            major, _, minor = (entry / "dev").read_text().strip().partition(":")
            device = devices.BlockDevice(f"/dev/{entry.name}", int(major), int(minor))
            size = int((entry / "size").read_text()) * 512
            read_only = (entry / "ro").read_text().strip() == "1"
            holders = os.listdir(entry / "holders")
            children = list(entry.iterdir())
        except (OSError, ValueError):
            continue
        has_partitions = any((child / "partition").exists() for child in children)
        if size == 0 or read_only or holders or has_partitions:
            continue
        if (device.major, device.minor) in mounted or devices.is_swap(device):
            continue
        found.append((device.path, format_size(size)))
    return found


complete_volume = _complete(_volume_names)
complete_snapshot = _complete(_snapshot_names)
complete_pool = _complete(_pool_names)
complete_free_device = _complete(free_block_devices)
