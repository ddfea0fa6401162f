"""Whether lvm2's device filters or devices file let it use a device.

lvm2 ignores a device that ``devices/global_filter`` or ``devices/filter``
rejects, and pvcreate then fails with "Cannot use DEVICE: device is rejected
by filter config". lvmvol evaluates the filters itself before it changes
anything, following lvm.conf(5) of lvm2 2.03: each pattern is ``a|REGEX|``
(accept) or ``r|REGEX|`` (reject), with any delimiter character. For each
name of the device, the first pattern whose regex matches decides. The
device is accepted when some name's first match is an ``a`` pattern,
rejected when every matching name's first match is an ``r`` pattern, and
accepted when no name matches at all.

With ``devices/use_devicesfile = 1`` and an existing devices file
(``/etc/lvm/devices/system.devices``), lvm2 uses only the devices the file
lists, and its regex filter skips both filter settings. pvcreate and
vgcreate add a new PV to that file themselves (lvmdevices(8)), so a device
the file does not list gets a note, not a refusal.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass

from lvmvol import lvm
from lvmvol.runner import Runner

log = logging.getLogger("lvmvol.lvm_filter")

FILTER_KEYS = ("devices/global_filter", "devices/filter")
DEVICES_FILE_KEYS = ("devices/use_devicesfile", "devices/devicesfile")


@dataclass(frozen=True)
class FilterVerdict:
    accepted: bool
    # The pattern that decided, with the key it came from, or "" when none matched.
    pattern: str = ""
    key: str = ""


def parse_pattern(pattern: str) -> tuple[str, re.Pattern[str]] | None:
    """Return (``a`` or ``r``, compiled regex) for one filter pattern; None when it cannot be read."""
    if len(pattern) < 3 or pattern[0] not in "ar" or pattern[-1] != pattern[1]:
        return None
    try:
        return pattern[0], re.compile(pattern[2:-1])
    except re.error:
        # NOTE: lvm2 has its own regex engine; a pattern Python cannot
        # compile is skipped here, so lvmvol may miss what it decides.
        log.debug("skipping lvm2 filter pattern that Python cannot compile: %s", pattern)
        return None


def evaluate(patterns: list[str], names: list[str], key: str = "") -> FilterVerdict:
    """Apply one filter setting (a list of patterns) to the names of one device."""
    parsed = [(pattern, parse_pattern(pattern)) for pattern in patterns]
    rejected_by = ""
    for name in names:
        for text, rule in parsed:
            if rule is None or not rule[1].search(name):
                continue
            if rule[0] == "a":
                return FilterVerdict(True, text, key)
            rejected_by = rejected_by or text
            break
    if rejected_by:
        return FilterVerdict(False, rejected_by, key)
    return FilterVerdict(True)


@dataclass(frozen=True)
class DeviceAdmission:
    """What lvm2's configuration says about one device."""

    rejection: FilterVerdict | None
    devices_file: str | None
    listed_in_devices_file: bool

    def note(self, path: str) -> str | None:
        if self.devices_file and not self.listed_in_devices_file:
            return f"lvm2's devices file {self.devices_file} does not list {path}; pvcreate adds it"
        return None


def devices_file_path(name: str) -> str:
    system_dir = os.environ.get("LVM_SYSTEM_DIR", "/etc/lvm")
    return os.path.join(system_dir, "devices", name)


def listed_devices(text: str) -> set[str]:
    """Return the DEVNAME and IDNAME values of a devices file's entries."""
    found = set()
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        for field in line.split():
            key, _, value = field.partition("=")
            if key in ("DEVNAME", "IDNAME") and value.startswith("/"):
                found.add(value)
    return found


def check_device(runner: Runner, names: list[str]) -> DeviceAdmission:
    """Return whether lvm2's configuration lets it use the device known by ``names``."""
    values = lvm.config_values(runner, *FILTER_KEYS, *DEVICES_FILE_KEYS)
    use_devices_file = values.get("devices/use_devicesfile", "0").strip() == "1"
    devices_file = None
    listed = False
    if use_devices_file:
        file_names = lvm.config_strings(values.get("devices/devicesfile", '"system.devices"'))
        candidate = devices_file_path(file_names[0] if file_names else "system.devices")
        if os.path.exists(candidate):
            devices_file = candidate
            with open(candidate) as handle:
                entries = listed_devices(handle.read())
            known_as = set(names) | {os.path.realpath(name) for name in names}
            listed = bool(entries & known_as)

    rejection = None
    for key in () if devices_file else FILTER_KEYS:
        verdict = evaluate(lvm.config_strings(values.get(key, "")), names, key)
        if not verdict.accepted:
            rejection = verdict
            break
    return DeviceAdmission(rejection, devices_file, listed)
