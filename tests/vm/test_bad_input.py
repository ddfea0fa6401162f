"""Bad input to every command: one line on stderr, a documented exit code, and nothing changed.

Each case runs against a pool with a plain volume, a mounted volume, an
encrypted volume and a snapshot, and compares LVM, device-mapper and the
mount table before and after. Cases are listed in tables, so a new command
or option gets its bad inputs by adding rows.
"""

from __future__ import annotations

import json
import os

import pytest

from .helpers import lvm_json, run_command
from .lvmvol_fixtures import mount_root, thin_pool  # noqa: F401

MiB = 1024 * 1024
# Exit codes from docs/exit-codes.md.
INVALID, NOT_FOUND, CONFLICT = 2, 3, 4


def system_state() -> dict:
    """Return what a failed command must leave unchanged: LVs with tags, dm devices, mounts."""
    # lv_attr would include the open flag, which a udev probe can set for a moment.
    lvs = lvm_json("lvs", "-a", "-o", "vg_name,lv_name,lv_active,lv_permissions,lv_skip_activation,lv_size,lv_tags,origin")
    mappings = run_command(["dmsetup", "ls"]).stdout.split("\n")
    with open("/proc/self/mountinfo") as handle:
        mounts = sorted(line.split()[4] for line in handle)
    return {
        "lvs": sorted(json.dumps(row, sort_keys=True) for row in lvs),
        "mappings": sorted(line.split()[0] for line in mappings if line.strip()),
        "mounts": mounts,
    }


def make_key(directory: str, name: str, content: bytes | None = None, mode: int = 0o600) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as handle:
        handle.write(os.urandom(64) if content is None else content)
    os.chmod(path, mode)
    return path


@pytest.fixture
def landscape(thin_pool, lvmvol, tmp_path):
    """A pool with volumes in each state the cases need, and paths of bad inputs."""
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    good_key = make_key(str(keys), "good.key")
    lvmvol("volume", "create", "plain", "--size", "32M")
    lvmvol("volume", "create", "busy", "--size", "32M")
    busy_at = lvmvol("volume", "mount", "busy").stdout.strip()
    lvmvol("volume", "create", "sealed", "--size", "48M", "--luks", "--key-file", good_key)
    lvmvol("snapshot", "plain", "plain-snap")

    full_dir = tmp_path / "full"
    full_dir.mkdir()
    (full_dir / "file").write_text("data")
    os.symlink(str(tmp_path), str(tmp_path / "link"))
    return {
        "pool": thin_pool,
        "busy_at": busy_at,
        "good_key": good_key,
        "missing_key": str(keys / "missing.key"),
        "empty_key": make_key(str(keys), "empty.key", b""),
        "open_key": make_key(str(keys), "open.key", mode=0o644),
        "wrong_key": make_key(str(keys), "wrong.key"),
        "new_key": make_key(str(keys), "new.key"),
        "key_dir": str(keys),
        "full_dir": str(full_dir),
        "link": str(tmp_path / "link"),
    }


def cases(land: dict) -> list[tuple[list[str], int, str]]:
    """Return (argv, expected exit code, text the error must contain) for each bad input."""
    vg = land["pool"].vg
    return [
        # Missing volumes and pools.
        (["volume", "show", "nosuch"], NOT_FOUND, "nosuch"),
        (["volume", "mount", "nosuch"], NOT_FOUND, "nosuch"),
        (["volume", "umount", "nosuch"], NOT_FOUND, "nosuch"),
        (["snapshot", "nosuch"], NOT_FOUND, "nosuch"),
        (["volume", "encrypt", "nosuch"], NOT_FOUND, "nosuch"),
        (["volume", "rekey", "nosuch", "--new-key-file", land["good_key"]], NOT_FOUND, "nosuch"),
        (["volume", "create", "fresh", "--size", "32M", "--pool", "nopool"], NOT_FOUND, "nopool"),
        (["volume", "create", "fresh", "--size", "32M", "--pool", f"novg/pool"], NOT_FOUND, "novg"),
        # Duplicates: the same name with another specification.
        (["volume", "create", "plain", "--size", "64M"], CONFLICT, "plain"),
        (["volume", "create", "plain", "--size", "32M", "--luks", "--key-file", land["good_key"]], CONFLICT, "plain"),
        (["snapshot", "plain", "busy"], CONFLICT, "busy"),
        # Bad names and sizes on commands other than create.
        (["snapshot", "plain", "snapshot-x"], INVALID, "snapshot-x"),
        (["snapshot", "plain", "a b"], INVALID, "a b"),
        (["volume", "create", "x_tdata", "--size", "32M"], INVALID, "_tdata"),
        (["volume", "create", "fresh", "--size", "10"], INVALID, "10"),
        (["volume", "create", "fresh", "--size", "1.5B"], INVALID, "1.5B"),
        (["volume", "create", "fresh", "--size", "64M", "--fs", "xfs"], INVALID, "300"),
        # Key files.
        (["volume", "create", "fresh", "--size", "32M", "--luks", "--key-file", land["missing_key"]], NOT_FOUND, land["missing_key"]),
        (["volume", "create", "fresh", "--size", "32M", "--luks", "--key-file", land["empty_key"]], INVALID, land["empty_key"]),
        (["volume", "create", "fresh", "--size", "32M", "--luks", "--key-file", land["key_dir"]], INVALID, land["key_dir"]),
        (["volume", "create", "fresh", "--size", "32M", "--luks", "--key-file", land["open_key"]], INVALID, "chmod"),
        (["volume", "create", "fresh", "--size", "32M", "--allow-discards"], INVALID, "--luks"),
        (["volume", "mount", "sealed", "--key-file", land["wrong_key"]], INVALID, "does not open volume"),
        (["volume", "mount", "sealed", "--key-file", land["open_key"]], INVALID, "chmod"),
        (["volume", "mount", "plain", "--key-file", land["good_key"]], INVALID, "plain"),
        (["volume", "rekey", "plain", "--new-key-file", land["good_key"]], CONFLICT, "not encrypted"),
        (["volume", "rekey", "sealed", "--new-key-file", land["empty_key"]], INVALID, land["empty_key"]),
        (["volume", "rekey", "sealed", "--new-key-file", land["new_key"], "--key-file", land["wrong_key"]], INVALID, land["wrong_key"]),
        # Mountpoints.
        (["volume", "mount", "plain", "relative/dir"], INVALID, "relative/dir"),
        (["volume", "mount", "plain", "/proc/lvmvol"], INVALID, "/proc"),
        (["volume", "mount", "plain", "/sys/lvmvol"], INVALID, "/sys"),
        (["volume", "mount", "plain", land["full_dir"]], CONFLICT, land["full_dir"]),
        (["volume", "mount", "plain", land["link"]], INVALID, land["link"]),
        (["volume", "mount", "plain", land["busy_at"]], CONFLICT, land["busy_at"]),
        # Volumes in use.
        (["volume", "rm", "busy"], CONFLICT, land["busy_at"]),
        (["volume", "encrypt", "busy", "--key-file", land["good_key"]], CONFLICT, land["busy_at"]),
        (["volume", "rm", "busy", "--force"], CONFLICT, "pass --yes"),
        # Restore, resize and mount access.
        (["volume", "restore", "nosuch"], NOT_FOUND, "nosuch"),
        (["volume", "restore", "plain"], INVALID, "plain"),
        (["volume", "resize", "nosuch", "--size", "64M"], NOT_FOUND, "nosuch"),
        (["volume", "resize", "plain", "--size", "16M"], INVALID, "shrink"),
        (["volume", "resize", "plain", "--size", "+10"], INVALID, "+10"),
        (["volume", "mount", "plain", "--read-only", "--read-write"], INVALID, "--read-only"),
        (["volume", "mount", "plain-snap", "--read-write", "--options", "ro"], INVALID, "--read-write"),
        # Pools.
        (["pool", "extend", "nopool", "--size", "+64M"], NOT_FOUND, "nopool"),
        (["pool", "rm", f"{vg}/pool"], CONFLICT, "plain"),
        (["pool", "init", "/dev/nosuchdisk", "--vg", vg], NOT_FOUND, "/dev/nosuchdisk"),
        (["pool", "init", "--file", "relative.img", "--file-size", "1G", "--vg", "bad vg"], INVALID, "bad vg"),
        (["pool", "init", "/dev/null", "--vg", "other"], INVALID, "/dev/null"),
    ]


def test_rm_missing_volume_unchanged(thin_pool, lvmvol):
    """Removal is idempotent: a volume or pool that is already gone is "unchanged", as a second rm finds it."""
    before = system_state()

    volume = lvmvol("volume", "rm", "nosuch")
    pool = lvmvol("pool", "rm", "nopool")

    assert "'nosuch' does not exist" in volume.stderr
    assert "'nopool' does not exist" in pool.stderr
    assert system_state() == before


def test_bad_input_matrix(landscape, lvmvol):
    before = system_state()
    failures = []

    for argv, expected_code, expected_text in cases(landscape):
        result = lvmvol(*argv, check=False)

        lines = result.stderr.strip().splitlines()
        problems = []
        if result.returncode != expected_code:
            problems.append(f"exit code {result.returncode}, expected {expected_code}")
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, expected 1")
        if "Traceback" in result.stderr:
            problems.append("a traceback")
        if expected_text not in result.stderr:
            problems.append(f"no {expected_text!r} in the message")
        if result.stdout.strip():
            problems.append(f"stdout {result.stdout.strip()!r}")
        after = system_state()
        if after != before:
            problems.append(f"state changed: {state_difference(before, after)}")
            before = after
        if problems:
            failures.append(f"lvmvol {' '.join(argv)}: {'; '.join(problems)}\n    stderr: {result.stderr.strip()}")

    assert not failures, "\n".join(failures)


def state_difference(before: dict, after: dict) -> str:
    parts = []
    for key in before:
        added = sorted(set(after[key]) - set(before[key]))
        removed = sorted(set(before[key]) - set(after[key]))
        if added or removed:
            parts.append(f"{key}: added {added}, removed {removed}")
    return "; ".join(parts)
