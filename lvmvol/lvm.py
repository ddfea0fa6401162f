"""lvm2 commands: the argv lvmvol runs and the JSON reports it reads back.

Reports come from ``lvs``/``vgs``/``pvs --reportformat json --units b
--nosuffix`` and are read by field name, never by column position or message
text. lvm2 2.03 prints every value as a string in that format; the parsers
here convert them. Commands that could prompt get ``--yes`` only after lvmvol
has checked what the prompt would protect; the rest run with standard input
closed, so a prompt reads end-of-file and lvm2 answers "no".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from lvmvol.runner import Runner

REPORT_OPTIONS = ["--reportformat", "json", "--units", "b", "--nosuffix"]

LV_FIELDS = [
    "lv_name",
    "vg_name",
    "lv_uuid",
    "lv_attr",
    "lv_size",
    "segtype",
    "pool_lv",
    "origin",
    "lv_tags",
    "lv_time",
    "lv_active",
    "lv_device_open",
    "lv_skip_activation",
    "lv_dm_path",
    "lv_kernel_major",
    "lv_kernel_minor",
    "data_percent",
    "metadata_percent",
    "lv_metadata_size",
    "thin_id",
    "vg_extent_size",
    "vg_free",
    "vg_size",
]

VG_FIELDS = [
    "vg_name",
    "vg_size",
    "vg_free",
    "vg_extent_size",
    "vg_extent_count",
    "vg_free_count",
    "vg_tags",
    "pv_count",
]

PV_FIELDS = ["pv_name", "vg_name", "pv_uuid", "pv_size", "dev_size"]


@dataclass
class LogicalVolume:
    """One row of ``lvs``: a thin pool, a thin volume or another LV."""

    name: str
    vg: str
    uuid: str
    attr: str
    size: int
    segtype: str
    pool: str
    origin: str
    tags: list[str]
    created: datetime | None
    active: bool
    open: bool
    skip_activation: bool
    dm_path: str
    major: int | None
    minor: int | None
    data_percent: float | None
    metadata_percent: float | None
    metadata_size: int
    extent_size: int
    vg_free: int
    vg_size: int
    # The thin device id in the pool's metadata; None for other LVs. A thin
    # snapshot merge gives the origin's name the snapshot's thin device id.
    thin_id: int | None = None

    @property
    def full_name(self) -> str:
        return f"{self.vg}/{self.name}"

    @property
    def read_only(self) -> bool:
        return len(self.attr) > 1 and self.attr[1] == "r"


@dataclass
class VolumeGroup:
    name: str
    size: int
    free: int
    extent_size: int
    extent_count: int
    free_count: int
    tags: list[str] = field(default_factory=list)
    pv_count: int = 0


@dataclass
class PhysicalVolume:
    name: str
    vg: str
    uuid: str
    size: int


def _number(text: str) -> int:
    return int(float(text)) if text else 0


def _percent(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def _kernel_number(text: str) -> int | None:
    value = int(text) if text not in ("", None) else -1
    return value if value >= 0 else None


def _tags(text: str) -> list[str]:
    return [tag for tag in text.split(",") if tag] if text else []


# lv_time as lvm2 2.03 reports it: "2026-12-04 19:53:40 +0000".
_LV_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"
)


def _time(text: str) -> datetime | None:
    """Parse lv_time; None when it is empty or not in lvm2's format.

    A regular expression instead of ``datetime.strptime``, which took a
    third of ``volume ls`` at 500 volumes.
    """
    match = _LV_TIME.fullmatch(text) if text else None
    if match is None:
        return None
    year, month, day, hour, minute, second, sign, offset_hours, offset_minutes = match.groups()
    offset = timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
    try:
        return datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            tzinfo=timezone(-offset if sign == "-" else offset),
        )
    except ValueError:
        return None


def parse_report(output: str, kind: str) -> list[dict[str, str]]:
    """Return the rows of one ``--reportformat json`` report of ``kind`` ("lv", "vg", "pv")."""
    if not output.strip():
        return []
    document = json.loads(output)
    rows: list[dict[str, str]] = []
    for section in document.get("report", []):
        rows.extend(section.get(kind, []))
    return rows


def parse_lv(row: dict[str, str]) -> LogicalVolume:
    return LogicalVolume(
        name=row["lv_name"],
        vg=row["vg_name"],
        uuid=row.get("lv_uuid", ""),
        attr=row.get("lv_attr", ""),
        size=_number(row.get("lv_size", "")),
        segtype=row.get("segtype", ""),
        pool=row.get("pool_lv", ""),
        origin=row.get("origin", ""),
        tags=_tags(row.get("lv_tags", "")),
        created=_time(row.get("lv_time", "")),
        active=row.get("lv_active", "") == "active",
        open=row.get("lv_device_open", "") == "open",
        skip_activation=bool(row.get("lv_skip_activation", "")),
        dm_path=row.get("lv_dm_path", ""),
        major=_kernel_number(row.get("lv_kernel_major", "")),
        minor=_kernel_number(row.get("lv_kernel_minor", "")),
        data_percent=_percent(row.get("data_percent", "")),
        metadata_percent=_percent(row.get("metadata_percent", "")),
        metadata_size=_number(row.get("lv_metadata_size", "")),
        extent_size=_number(row.get("vg_extent_size", "")),
        vg_free=_number(row.get("vg_free", "")),
        vg_size=_number(row.get("vg_size", "")),
        thin_id=int(row["thin_id"]) if row.get("thin_id", "").isdigit() else None,
    )


def parse_vg(row: dict[str, str]) -> VolumeGroup:
    return VolumeGroup(
        name=row["vg_name"],
        size=_number(row.get("vg_size", "")),
        free=_number(row.get("vg_free", "")),
        extent_size=_number(row.get("vg_extent_size", "")),
        extent_count=_number(row.get("vg_extent_count", "")),
        free_count=_number(row.get("vg_free_count", "")),
        tags=_tags(row.get("vg_tags", "")),
        pv_count=_number(row.get("pv_count", "")),
    )


def parse_pv(row: dict[str, str]) -> PhysicalVolume:
    return PhysicalVolume(
        name=row["pv_name"],
        vg=row.get("vg_name", ""),
        uuid=row.get("pv_uuid", ""),
        size=_number(row.get("pv_size", "") or row.get("dev_size", "")),
    )


def list_lvs(runner: Runner, vg: str | None = None, hidden: bool = False) -> list[LogicalVolume]:
    """Return every LV (or those of ``vg``) from one ``lvs`` call."""
    argv = ["lvs", *REPORT_OPTIONS, "-o", ",".join(LV_FIELDS)]
    if hidden:
        argv.append("-a")
    if vg:
        argv.append(vg)
    result = runner.run(argv, mutating=False)
    return [parse_lv(row) for row in parse_report(result.stdout, "lv")]


def list_vgs(runner: Runner) -> list[VolumeGroup]:
    result = runner.run(["vgs", *REPORT_OPTIONS, "-o", ",".join(VG_FIELDS)], mutating=False)
    return [parse_vg(row) for row in parse_report(result.stdout, "vg")]


def list_pvs(runner: Runner) -> list[PhysicalVolume]:
    result = runner.run(["pvs", *REPORT_OPTIONS, "-o", ",".join(PV_FIELDS)], mutating=False)
    return [parse_pv(row) for row in parse_report(result.stdout, "pv")]


def _tag_options(option: str, tags: list[str]) -> list[str]:
    """Return ``[option, tag, option, tag, ...]``, as lvm2 takes one tag per option."""
    return [argument for tag in tags for argument in (option, tag)]


def pvcreate(runner: Runner, device: str) -> None:
    # No --yes: lvmvol has checked the device for signatures first, and a
    # prompt about anything it missed reads end-of-file and fails safe.
    runner.run(["pvcreate", device], mutating=True)


def vgcreate(runner: Runner, vg: str, devices: list[str], tags: list[str]) -> None:
    runner.run(["vgcreate", *_tag_options("--addtag", tags), vg, *devices], mutating=True)


def vgextend(runner: Runner, vg: str, devices: list[str]) -> None:
    runner.run(["vgextend", vg, *devices], mutating=True)


def add_vg_tags(runner: Runner, vg: str, tags: list[str]) -> None:
    runner.run(["vgchange", *_tag_options("--addtag", tags), vg], mutating=True)


def create_thin_pool(
    runner: Runner, vg: str, name: str, data_size: int, metadata_size: int, tags: list[str]
) -> None:
    argv = [
        "lvcreate",
        "--type", "thin-pool",
        "--size", f"{data_size}b",
        "--poolmetadatasize", f"{metadata_size}b",
        "--name", name,
        # lvm2 rejects --wipesignatures for thin pools; it zeroes the start
        # of the new metadata LV itself, and --yes answers any wipe prompt.
        "--yes",
        *_tag_options("--addtag", tags),
    ]
    runner.run([*argv, vg], mutating=True)


def create_thin_volume(
    runner: Runner, vg: str, pool: str, name: str, size: int, tags: list[str]
) -> None:
    """Create a thin volume; ``--yes`` with ``--wipesignatures y`` clears what old data held."""
    argv = [
        "lvcreate",
        "--type", "thin",
        "--virtualsize", f"{size}b",
        "--thinpool", pool,
        "--name", name,
        "--wipesignatures", "y",
        "--yes",
        *_tag_options("--addtag", tags),
    ]
    runner.run([*argv, vg], mutating=True)


def create_thin_snapshot(
    runner: Runner,
    vg: str,
    origin: str,
    name: str,
    tags: list[str],
    read_only: bool = False,
    active: bool = True,
) -> None:
    """Create a thin snapshot of ``vg/origin``, active unless ``active`` is False, read-only with ``read_only``.

    ``--setactivationskip n`` clears the flag lvm2 sets on thin snapshots by
    default, which would leave the snapshot inactive with no device node.
    No signature wiping here: the snapshot shares the origin's data. lvm2
    2.03.16 makes a snapshot writable unless ``--permission r`` is given,
    also when the origin is read-only.
    """
    argv = [
        "lvcreate",
        "--snapshot",
        "--name", name,
        "--setactivationskip", "n",
        *(["--permission", "r"] if read_only else []),
        "--yes",
        *_tag_options("--addtag", tags),
    ]
    if not active:
        argv += ["--activate", "n"]
    runner.run([*argv, f"{vg}/{origin}"], mutating=True)


def merge_thin_snapshot(runner: Runner, vg: str, snapshot: str) -> None:
    """Merge the thin snapshot ``vg/snapshot`` into its origin with ``lvconvert --merge``.

    With both LVs inactive, lvm2 2.03 does it in one metadata commit: the
    origin's name, LV UUID, tags and creation time pass to the snapshot's
    thin device, and the origin's old thin device is removed. lvm2 delays
    the merge to the origin's next activation when either LV is open, so
    callers deactivate both first.
    """
    runner.run(["lvconvert", "--merge", f"{vg}/{snapshot}"], mutating=True)


def rename_lv(runner: Runner, vg: str, name: str, new_name: str) -> None:
    runner.run(["lvrename", vg, name, new_name], mutating=True)


def activate(runner: Runner, vg: str, name: str) -> None:
    """Activate ``vg/name``; ``--ignoreactivationskip`` also covers LVs made by other tools."""
    runner.run(
        ["lvchange", "--activate", "y", "--ignoreactivationskip", f"{vg}/{name}"],
        mutating=True,
    )


def deactivate(runner: Runner, vg: str, name: str) -> None:
    runner.run(["lvchange", "--activate", "n", f"{vg}/{name}"], mutating=True)


def extend_lv(runner: Runner, vg: str, name: str, size: int) -> None:
    """Grow ``vg/name`` to ``size`` bytes; on a thin volume no space is allocated until written."""
    runner.run(["lvextend", "--size", f"{size}b", f"{vg}/{name}"], mutating=True)


def extend_pool_metadata(runner: Runner, vg: str, pool: str, size: int) -> None:
    """Grow the metadata LV of thin pool ``vg/pool`` to ``size`` bytes (lvm2 grows its spare too)."""
    runner.run(["lvextend", "--poolmetadatasize", f"{size}b", f"{vg}/{pool}"], mutating=True)


def pvresize(runner: Runner, device: str) -> None:
    """Grow the PV on ``device`` to the device's current size."""
    runner.run(["pvresize", device], mutating=True)


def change_tags(runner: Runner, vg: str, name: str, add: list[str], remove: list[str]) -> None:
    argv = ["lvchange", *_tag_options("--addtag", add), *_tag_options("--deltag", remove)]
    runner.run([*argv, f"{vg}/{name}"], mutating=True)


def remove_lv(runner: Runner, vg: str, name: str) -> None:
    """Remove ``vg/name``. Callers check first that nothing holds it open."""
    runner.run(["lvremove", "--yes", f"{vg}/{name}"], mutating=True)


def vgremove(runner: Runner, vg: str, with_spare: bool = False) -> None:
    """Remove the volume group ``vg``, which must hold no LV but a spare pool metadata LV.

    lvm2 asks before it removes a VG that holds LVs; ``with_spare`` answers
    yes because the caller checked that the spare is the only one.
    """
    runner.run(["vgremove", *(["--yes"] if with_spare else []), vg], mutating=True)


def pvremove(runner: Runner, device: str) -> None:
    """Wipe the PV label of ``device``, which must belong to no VG."""
    runner.run(["pvremove", device], mutating=True)


def monitor(runner: Runner, vg: str, name: str) -> None:
    """Register ``vg/name`` with dmeventd, which warns as a thin pool fills and autoextends it."""
    runner.run(["lvchange", "--monitor", "y", f"{vg}/{name}"], mutating=True)


def thin_pool_monitoring(runner: Runner) -> dict[tuple[str, str], str]:
    """Return dmeventd's state of every thin pool: ``monitored``, ``not monitored`` or "".

    ``seg_monitor`` is a segment field, so it is read in its own report
    instead of the LV report, where it would add a row per segment.
    """
    argv = ["lvs", *REPORT_OPTIONS, "-o", "vg_name,lv_name,seg_monitor", "--select", "segtype=thin-pool"]
    result = runner.run(argv, mutating=False)
    return {
        (row["vg_name"], row["lv_name"]): row.get("seg_monitor", "")
        for row in parse_report(result.stdout, "seg") + parse_report(result.stdout, "lv")
    }


def config_values(runner: Runner, *keys: str) -> dict[str, str]:
    """Return lvm2's effective settings (lvm.conf over lvm2's defaults) as ``{"section/key": text}``.

    A value stays as lvmconfig prints it: ``100``, ``"a|.*|"`` or
    ``["r|/dev/sdb|","a|.*|"]``. A key set in no configuration file comes
    from ``lvmconfig --type default``; lvm2 2.03.16's ``--type full`` fails
    for it with "Cannot clone NULL config node". A key without a value, or
    one this lvm2 version does not know, is left out.
    """
    values = {}
    for key in keys:
        for argv in (["lvmconfig", key], ["lvmconfig", "--type", "default", key]):
            # lvmconfig exits non-zero for a key that is not set or not known.
            result = runner.run(argv, mutating=False, ok_codes=tuple(range(6)))
            value = _config_line_value(result.stdout, key) if result.returncode == 0 else None
            if value is not None:
                values[key] = value
                break
    return values


def _config_line_value(output: str, key: str) -> str | None:
    """Return the value of ``key`` in lvmconfig output; a commented line means "no default"."""
    for line in output.splitlines():
        name, separator, value = line.strip().partition("=")
        if separator and name == key.rpartition("/")[2]:
            return value
    return None


def config_strings(value: str) -> list[str]:
    """Return the strings in an lvmconfig value: one for ``"x"``, each element for ``["x","y"]``."""
    return [match.group(1).replace('\\"', '"') for match in _QUOTED.finditer(value)]


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
