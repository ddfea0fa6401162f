"""Helpers for the VM suite: commands, lvm2 reports, loop devices, config files.

Everything here changes the running kernel's devices. It runs only inside the
throwaway VM that tests/vm/run-vm boots; conftest.py checks that before any
test starts.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

# Seconds one external command in a test may take. It is generous because
# lvcreate or mkfs.xfs can take several seconds under software emulation.
# It exists so that a hung command fails its test instead of running into
# run-vm's timeout for the whole VM.
COMMAND_TIMEOUT = 300

LVM_REPORT_COMMANDS = {"lvs": "lv", "vgs": "vg", "pvs": "pv"}


def format_result(argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> str:
    """Format a finished command for an assertion message."""
    return (
        f"command: {shlex.join(argv)}\n"
        f"exit code: {returncode}\n"
        f"--- stdout ---\n{stdout.rstrip()}\n"
        f"--- stderr ---\n{stderr.rstrip()}"
    )


def run_command(
    argv: Sequence[str],
    *,
    input: str | None = None,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float = COMMAND_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with text output captured and stdin closed unless ``input`` is given.

    ``env`` adds variables to this process's environment. With ``check``, a
    non-zero exit code raises AssertionError that shows argv, the exit code,
    stdout and stderr.
    """
    argv = [str(arg) for arg in argv]
    full_env = dict(os.environ)
    if env is not None:
        full_env.update(env)

    result = subprocess.run(
        argv,
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            "command failed\n"
            + format_result(argv, result.returncode, result.stdout, result.stderr)
        )
    return result


def lvm_json(cmd: str, *args: str) -> list[dict[str, str]]:
    """Run ``lvs``, ``vgs`` or ``pvs`` and return the report rows.

    Sizes are in bytes without a suffix. lvm2 reports every value as a
    string, so a size compares as ``row["lv_size"] == str(512 * 2**20)``.
    """
    if cmd not in LVM_REPORT_COMMANDS:
        raise ValueError(f"lvm_json runs lvs, vgs or pvs, not {cmd!r}")

    result = run_command(
        [cmd, "--reportformat", "json", "--units", "b", "--nosuffix", *args]
    )
    report = json.loads(result.stdout)["report"]
    if len(report) != 1:
        raise AssertionError(f"expected one report from {cmd}, got {len(report)}: {result.stdout}")

    # Options such as --segments change the row key (seg, pvseg), so take the
    # only key when there is one.
    rows_by_key = report[0]
    if len(rows_by_key) == 1:
        return next(iter(rows_by_key.values()))
    return rows_by_key[LVM_REPORT_COMMANDS[cmd]]


# Allowed characters of an LVM VG or LV name (lvm(8), "Valid names").
LVM_NAME_PATTERN = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]*")


def make_unique_name(prefix: str = "t", used: set[str] | None = None) -> str:
    """Return ``prefix`` followed by five random hex digits, e.g. ``t3f9a1``.

    The result is a valid LVM VG and LV name, short enough to leave room for
    lvmvol's ``luks-`` device-mapper names. Names in ``used`` are not
    returned again, and the new name is added to it.
    """
    if not LVM_NAME_PATTERN.fullmatch(prefix) or prefix.startswith(("snapshot", "pvmove")):
        raise ValueError(
            f"invalid name prefix {prefix!r}: use A-Za-z0-9+_.-, not starting with "
            "'-', 'snapshot' or 'pvmove'"
        )

    while True:
        name = prefix + uuid.uuid4().hex[:5]
        if used is None:
            return name
        if name not in used:
            used.add(name)
            return name


# Loop devices


@dataclass(frozen=True)
class LoopDevice:
    """A loop device attached to a sparse backing file."""

    path: str
    backing_file: Path

    @property
    def kernel_name(self) -> str:
        """The name under /sys/block, such as ``loop3``."""
        return os.path.basename(self.path)


def attach_loop_device(directory: Path, size: str | int = "512M") -> LoopDevice:
    """Create a sparse file of ``size`` in ``directory`` and attach it to a free loop device.

    ``size`` is a byte count or a string in truncate(1) syntax: ``512M`` and
    ``1G`` are binary units, ``500MB`` is decimal.
    """
    backing_file = directory / f"loop-{uuid.uuid4().hex[:12]}.img"
    run_command(["truncate", "--size", str(size), str(backing_file)])
    try:
        result = run_command(["losetup", "--find", "--show", str(backing_file)])
    except BaseException:
        backing_file.unlink()
        raise
    return LoopDevice(path=result.stdout.strip(), backing_file=backing_file)


@dataclass(frozen=True)
class StackedDevice:
    """A device-mapper device that sits on a loop device, directly or through others."""

    kernel_name: str  # dm-N
    name: str  # the name under /dev/mapper
    uuid: str  # LVM-... for logical volumes, CRYPT-... for dm-crypt
    depth: int  # 1 for a direct holder of the loop device


def read_sysfs(path: Path) -> str:
    return path.read_text().strip()


def find_stacked_devices(kernel_name: str) -> list[StackedDevice]:
    """Return all device-mapper devices stacked on ``kernel_name``, deepest first.

    Walks /sys/block/NAME/holders recursively: a thin volume holds the thin
    pool, which holds the pool's _tdata and _tmeta devices, which hold the loop
    device. A device reachable on two paths is reported once, at its greatest
    depth, so removing the list in order never removes a device that another
    device still holds.
    """
    depths: dict[str, int] = {}

    def visit(name: str, depth: int) -> None:
        holders_dir = Path("/sys/block") / name / "holders"
        if not holders_dir.is_dir():
            return
        for holder in holders_dir.iterdir():
            if depths.get(holder.name, 0) < depth + 1:
                depths[holder.name] = depth + 1
                visit(holder.name, depth + 1)

    visit(kernel_name, 0)

    devices = []
    for name, depth in depths.items():
        dm_dir = Path("/sys/block") / name / "dm"
        if not dm_dir.is_dir():
            continue
        devices.append(
            StackedDevice(
                kernel_name=name,
                name=read_sysfs(dm_dir / "name"),
                uuid=read_sysfs(dm_dir / "uuid"),
                depth=depth,
            )
        )
    devices.sort(key=lambda device: device.depth, reverse=True)
    return devices


def unescape_mountinfo(field: str) -> str:
    """Decode the octal escapes (``\\040`` for a space) in a /proc/self/mountinfo field."""
    return re.sub(r"\\([0-7]{3})", lambda match: chr(int(match.group(1), 8)), field)


def find_mountpoints(kernel_names: Iterable[str]) -> list[str]:
    """Return the mountpoints of the given block devices, longest path first."""
    device_numbers = set()
    for name in kernel_names:
        dev_file = Path("/sys/block") / name / "dev"
        if dev_file.exists():
            device_numbers.add(read_sysfs(dev_file))

    mountpoints = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            # Field 3 is MAJOR:MINOR of the mounted device, field 5 the mountpoint.
            if fields[2] in device_numbers:
                mountpoints.append(unescape_mountinfo(fields[4]))
    mountpoints.sort(key=len, reverse=True)
    return mountpoints


def find_volume_groups(device_path: str) -> list[str]:
    """Return the VG names on the PV ``device_path``, or an empty list when it is no PV or in no VG."""
    result = run_command(
        ["pvs", "--reportformat", "json", "-o", "vg_name", device_path], check=False
    )
    if result.returncode != 0:
        return []
    rows = json.loads(result.stdout)["report"][0]["pv"]
    return [row["vg_name"] for row in rows if row["vg_name"]]


def release_loop_device(loop: LoopDevice) -> list[str]:
    """Tear down everything built on ``loop``, detach it and delete its file.

    The steps, in order: lazily unmount filesystems on the loop device and on
    any device stacked on it, and remove the non-LVM device-mapper devices on
    top (dm-crypt mappings). Then remove the VGs on it and the PV label,
    detach the loop device and delete the backing file. Every step runs even
    when an earlier one failed. Returns the problems as messages, so an empty
    list means a clean teardown.
    """
    problems: list[str] = []

    def attempt(argv: Sequence[str]) -> bool:
        try:
            result = run_command(argv, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            problems.append(f"{shlex.join(argv)}: {error}")
            return False
        if result.returncode != 0:
            problems.append(format_result(argv, result.returncode, result.stdout, result.stderr))
            return False
        return True

    # Wait for udev first, because removing a device while udev probes it
    # with blkid fails with "device busy".
    attempt(["udevadm", "settle", "--timeout=60"])

    volume_groups = find_volume_groups(loop.path)
    stacked = find_stacked_devices(loop.kernel_name)

    for mountpoint in find_mountpoints([loop.kernel_name, *(d.kernel_name for d in stacked)]):
        attempt(["umount", "--lazy", mountpoint])

    for device in stacked:
        if not device.uuid.startswith("LVM-"):
            attempt(["dmsetup", "remove", "--retry", device.name])

    for volume_group in volume_groups:
        attempt(["vgremove", "-ff", "--yes", volume_group])

    # A VG that vgremove could not remove can still hold active LVs, which
    # keep the loop device open. Remove whatever device-mapper devices are
    # left so that the loop device can be detached.
    for device in find_stacked_devices(loop.kernel_name):
        attempt(["dmsetup", "remove", "--retry", device.name])

    if volume_groups or pv_label_present(loop.path):
        attempt(["pvremove", "-ff", "--yes", loop.path])

    # udev probes the loop device after pvremove closes it, and a detach
    # while it is open only sets autoclear, so let those probes finish first.
    attempt(["udevadm", "settle", "--timeout=60"])
    attempt(["losetup", "--detach", loop.path])

    try:
        loop.backing_file.unlink()
    except OSError as error:
        problems.append(f"deleting {loop.backing_file} failed: {error}")

    return problems


def pv_label_present(device_path: str) -> bool:
    return run_command(["pvs", device_path], check=False).returncode == 0


# TOML config files


BARE_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]+")


def toml_key(key: str) -> str:
    return key if BARE_KEY_PATTERN.fullmatch(key) else toml_string(key)


def toml_string(text: str) -> str:
    # A JSON string without \u escapes for non-ASCII text is a valid TOML basic
    # string, except that TOML does not allow a raw DEL character.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    # bool first: it is a subclass of int.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} value {value!r} to TOML")


def dump_toml(data: Mapping[str, Any]) -> str:
    """Serialize ``data`` as TOML: scalars and lists of scalars as keys, dicts as tables."""
    lines: list[str] = []

    def write_table(table: Mapping[str, Any], header: list[str]) -> None:
        subtables = []
        if header:
            lines.append("[" + ".".join(toml_key(part) for part in header) + "]")
        for key, value in table.items():
            if isinstance(value, Mapping):
                subtables.append((key, value))
            else:
                lines.append(f"{toml_key(key)} = {toml_value(value)}")
        for key, value in subtables:
            lines.append("")
            write_table(value, [*header, key])

    write_table(data, [])
    return "\n".join(lines).lstrip("\n") + "\n"


class ConfigFile:
    """The lvmvol config file of one test, empty until a test writes keys into it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        self.path.write_text("")

    def update(self, values: Mapping[str, Any]) -> None:
        """Merge ``values`` into the file; a dict value becomes a TOML table."""
        merge_into(self.data, values)
        self.path.write_text(dump_toml(self.data))

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def write_text(self, text: str) -> None:
        """Replace the file with raw TOML ``text``, for tests of invalid config files."""
        self.data = {}
        self.path.write_text(text)


def merge_into(target: dict[str, Any], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            merge_into(target[key], value)
        elif isinstance(value, Mapping):
            target[key] = {}
            merge_into(target[key], value)
        else:
            target[key] = value
