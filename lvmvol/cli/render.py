"""Tables and trees for people, drawn with rich.

rich is imported inside each function so that commands which print no
table start faster. On a terminal the output has colour and borders; piped,
it is plain columns without colour, and NO_COLOR is honoured by rich itself.
"""

from __future__ import annotations

from lvmvol.cli.common import is_terminal
from lvmvol.ops.inventory import Inventory, Pool, Volume
from lvmvol.ops.pool_health import PoolHealth
from lvmvol.units import format_size


def _console():
    from rich.console import Console

    if is_terminal():
        return Console(highlight=False)
    # Piped output keeps whole lines, so scripts never see a cut column.
    return Console(highlight=False, width=10_000, soft_wrap=True)


def _table(*columns: str):
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD if is_terminal() else None, pad_edge=False, show_edge=False)
    for column in columns:
        justify = "right" if column in ("SIZE", "DATA%", "META%", "COMMITTED", "VOLUMES", "VG FREE") else "left"
        table.add_column(column, justify=justify, no_wrap=True)
    return table


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _pool_warning(pool: Pool) -> str:
    """Return the WARNING column of a pool: what is past its threshold, or "-"."""
    return ", ".join(pool.usage_past_threshold()) or "-"


def _percent_cell(value: float | None, threshold: float):
    """Return a percentage for a table cell, in the warning colour at or past ``threshold``.

    rich drops the colour when stdout is no terminal or NO_COLOR is set.
    """
    from rich.text import Text

    past = value is not None and value >= threshold
    return Text(_percent(value), style="bold yellow" if past else "")


def pool_table(pools: list[Pool], health: list[PoolHealth]) -> None:
    table = _table(
        "POOL", "VG", "SIZE", "DATA%", "META%", "COMMITTED", "VOLUMES", "VG FREE", "MONITOR", "AUTOEXTEND", "WARNING"
    )
    for pool, state in zip(pools, health):
        table.add_row(
            pool.name,
            pool.vg,
            format_size(pool.lv.size),
            _percent_cell(pool.lv.data_percent, pool.data_threshold),
            _percent_cell(pool.lv.metadata_percent, pool.metadata_threshold),
            f"{pool.committed_ratio:.2f}x",
            str(pool.volume_count),
            format_size(pool.lv.vg_free),
            state.monitoring or "-",
            state.autoextend.describe(),
            _pool_warning(pool),
        )
    _console().print(table)


def _state(volume: Volume) -> str:
    flags = ["active" if volume.lv.active else "inactive"]
    if volume.lv.read_only:
        flags.append("read-only")
    if volume.incomplete:
        flags.append("incomplete")
    if volume.encrypting:
        flags.append("encrypting")
    if volume.restoring:
        flags.append("restoring")
    return ",".join(flags)


# Marks a pool name in listings when the pool is past its use threshold.
POOL_FULL_MARK = "(full)"


def _pool_name(volume: Volume) -> str:
    return f"{volume.lv.pool} {POOL_FULL_MARK}" if volume.pool_past_threshold else volume.lv.pool


def _created(volume: Volume) -> str:
    return volume.created.isoformat() if volume.created else "-"


def volume_table(volumes: list[Volume]) -> None:
    table = _table(
        "NAME", "VG", "POOL", "SIZE", "FS", "CRYPT", "ORIGIN", "CREATED", "STATE", "MOUNTPOINT"
    )
    for volume in volumes:
        table.add_row(
            volume.name,
            volume.vg,
            _pool_name(volume),
            format_size(volume.lv.size),
            volume.filesystem,
            "luks2" if volume.encrypted else "-",
            volume.origin or "-",
            _created(volume),
            _state(volume),
            volume.mountpoint or "-",
        )
    _console().print(table)


def volume_details(volume: Volume, snapshots: list[Volume]) -> None:
    rows = [
        ("name", volume.name),
        ("volume group", volume.vg),
        ("pool", _pool_name(volume)),
        ("size", f"{format_size(volume.lv.size)} ({volume.lv.size} bytes)"),
        ("filesystem", volume.filesystem),
        ("encryption", "LUKS2" if volume.encrypted else "none"),
        ("key", volume.key_source or "-"),
        ("mapping", volume.mapping_device if volume.mapping_open else "-"),
        ("origin", volume.origin or "-"),
        ("state", _state(volume)),
        ("device", volume.device if volume.lv.active else "-"),
        ("mountpoint", ", ".join(entry.mountpoint for entry in volume.mounts) or "-"),
        ("boot mountpoint", volume.persistent_mountpoint or "-"),
        ("created", _created(volume)),
        ("snapshots", ", ".join(child.name for child in snapshots) or "-"),
    ]
    console = _console()
    width = max(len(key) for key, _ in rows)
    for key, value in rows:
        console.print(f"{key.ljust(width)}  {value}")


def _volume_label(volume: Volume) -> str:
    parts = [volume.name, format_size(volume.lv.size), volume.filesystem]
    if volume.encrypted:
        parts.append("luks2 (encrypting)" if volume.encrypting else "luks2")
    if not volume.lv.active:
        parts.append("inactive")
    if volume.lv.read_only:
        parts.append("read-only")
    if volume.restoring:
        parts.append("restoring")
    # An encrypted volume's mountpoint is shown on its mapping's line.
    if volume.mountpoint and not volume.mapping_open:
        parts.append(volume.mountpoint)
    return "  ".join(parts)


def inventory_tree(inventory: Inventory) -> None:
    """Draw pools, their volumes, snapshots under their origins, and mountpoints."""
    from rich.markup import escape
    from rich.tree import Tree

    root = Tree("lvmvol", guide_style="dim")
    for pool in inventory.pools:
        pool_label = (
            f"{pool.full_name}  {format_size(pool.lv.size)}  "
            f"data {_percent(pool.lv.data_percent)}%  meta {_percent(pool.lv.metadata_percent)}%"
        )
        if pool.past_threshold:
            pool_label += f"  {POOL_FULL_MARK} {_pool_warning(pool)}"
        branch = root.add(escape(pool_label))
        members = [
            volume for volume in inventory.volumes if volume.vg == pool.vg and volume.lv.pool == pool.name
        ]
        names = {volume.name for volume in members}
        # Roots: volumes without an origin, or whose origin was removed.
        for volume in members:
            if volume.origin is None or volume.origin not in names:
                _add_volume(branch, volume, members)
    _console().print(root)


def _add_volume(parent, volume: Volume, members: list[Volume]) -> None:
    from rich.markup import escape

    node = parent.add(escape(_volume_label(volume)))
    if volume.mapping_open:
        mapping_label = f"{volume.mapping}  dm-crypt"
        if volume.mountpoint:
            mapping_label += f"  {volume.mountpoint}"
        node.add(escape(mapping_label))
    for child in members:
        if child.origin == volume.name:
            _add_volume(node, child, members)
