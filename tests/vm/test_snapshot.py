"""``lvmvol snapshot`` and ``lvmvol tree`` against real thin snapshots."""

from __future__ import annotations

import errno
import os
import re
from datetime import datetime, timedelta, timezone

from .helpers import run_command
from .lvmvol_fixtures import (  # noqa: F401
    all_lvs,
    big_thin_pool,
    json_output,
    lv_names,
    lv_row,
    mount_root,
    mountpoints_of,
    read_file,
    thin_pool,
    write_file,
)


def test_snapshot_is_active_at_once(thin_pool, lvmvol):
    lvmvol("volume", "create", "vol1", "--size", "64M")

    result = lvmvol("snapshot", "vol1", "vol1-snap")

    assert result.stdout == "vol1-snap\n"
    row = lv_row(thin_pool.vg, "vol1-snap")
    assert row["origin"] == "vol1"
    assert row["lv_active"] == "active"
    assert row["lv_skip_activation"] == ""
    assert row["lv_attr"][4] == "a"
    assert row["lv_attr"][9] != "k"
    assert os.path.exists(row["lv_dm_path"])
    shown = json_output(lvmvol("volume", "show", "vol1-snap", "--json"))
    assert shown["origin"] == "vol1"
    assert shown["active"] is True


def test_snapshot_keeps_old_data(thin_pool, lvmvol, tmp_path):
    lvmvol("volume", "create", "db", "--size", "64M")
    origin = lvmvol("volume", "mount", "db").stdout.strip()
    write_file(origin, "state.txt", "before")

    lvmvol("snapshot", "db", "db-backup")
    write_file(origin, "state.txt", "after")
    snapshot_mount = lvmvol("volume", "mount", "db-backup", str(tmp_path / "backup")).stdout.strip()

    assert read_file(snapshot_mount, "state.txt") == "before"
    assert read_file(origin, "state.txt") == "after"
    lvmvol("volume", "umount", "db-backup")
    lvmvol("volume", "umount", "db")


def test_snapshot_twice_is_unchanged(thin_pool, lvmvol):
    lvmvol("volume", "create", "vol1", "--size", "32M")
    lvmvol("snapshot", "vol1", "s1")
    before = all_lvs()

    again = lvmvol("snapshot", "vol1", "s1", "--json")

    assert json_output(again)["changed"] is False
    assert all_lvs() == before


def test_snapshot_name_of_other_origin_is_conflict(thin_pool, lvmvol):
    lvmvol("volume", "create", "a1", "--size", "32M")
    lvmvol("volume", "create", "b1", "--size", "32M")
    lvmvol("snapshot", "a1", "shared-name")

    result = lvmvol("snapshot", "b1", "shared-name", check=False)

    assert result.returncode == 4
    assert "shared-name" in result.stderr
    assert lv_row(thin_pool.vg, "shared-name")["origin"] == "a1"


def test_volume_snapshot_alias_and_default_name(thin_pool, lvmvol):
    lvmvol("volume", "create", "web", "--size", "32M")

    result = lvmvol("volume", "snapshot", "web")

    name = result.stdout.strip()
    assert re.fullmatch(r"web-\d{8}-\d{6}", name)
    # The name alone on stdout, so name=$(lvmvol snapshot web) works.
    assert result.stdout == f"{name}\n"
    assert lv_row(thin_pool.vg, name)["origin"] == "web"


def test_snapshot_of_snapshot(thin_pool, lvmvol):
    lvmvol("volume", "create", "base", "--size", "32M")
    lvmvol("snapshot", "base", "base-s1")

    lvmvol("snapshot", "base-s1", "base-s2")

    assert lv_row(thin_pool.vg, "base-s2")["origin"] == "base-s1"
    assert lv_row(thin_pool.vg, "base-s2")["lv_active"] == "active"


def test_snapshot_reactivates_inactive_one(thin_pool, lvmvol):
    """A snapshot left inactive with the activation-skip flag (as lvm2 makes them by default) is activated on re-run."""
    lvmvol("volume", "create", "vol1", "--size", "32M")
    run_command(["lvcreate", "-s", "-n", "legacy", "--addtag", "lvmvol.volume", "--addtag", "lvmvol.fs=ext4", f"{thin_pool.vg}/vol1"])
    row = lv_row(thin_pool.vg, "legacy")
    assert row["lv_active"] == ""
    assert row["lv_attr"][9] == "k"

    result = lvmvol("snapshot", "vol1", "legacy", "--json")

    assert json_output(result)["changed"] is True
    assert lv_row(thin_pool.vg, "legacy")["lv_active"] == "active"
    assert os.path.exists(lv_row(thin_pool.vg, "legacy")["lv_dm_path"])
    target = lvmvol("volume", "mount", "legacy").stdout.strip()
    assert mountpoints_of(lv_row(thin_pool.vg, "legacy")["lv_dm_path"]) == [target]
    lvmvol("volume", "umount", "legacy")


def test_xfs_snapshot_mounts_beside_origin(big_thin_pool, lvmvol, tmp_path):
    lvmvol("volume", "create", "xdb", "--size", "300M", "--fs", "xfs")
    origin = lvmvol("volume", "mount", "xdb").stdout.strip()
    write_file(origin, "row", "1")

    lvmvol("snapshot", "xdb", "xdb-s1")
    lvmvol("snapshot", "xdb", "xdb-s2")
    first = lvmvol("volume", "mount", "xdb-s1", str(tmp_path / "s1")).stdout.strip()
    second = lvmvol("volume", "mount", "xdb-s2", str(tmp_path / "s2")).stdout.strip()

    assert read_file(first, "row") == "1"
    assert read_file(second, "row") == "1"
    for name in ("xdb-s1", "xdb-s2", "xdb"):
        lvmvol("volume", "umount", name)


def test_snapshot_bad_names_change_nothing(thin_pool, lvmvol):
    lvmvol("volume", "create", "src", "--size", "32M")
    before = all_lvs()

    for name in ["snapshot-2024", "data_tmeta", "a b", "x" * 200, "..", "pvmove1"]:
        result = lvmvol("snapshot", "src", name, check=False)
        assert result.returncode == 2, (name, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr
    assert all_lvs() == before


def test_tree_shows_snapshots_under_origins(thin_pool, lvmvol):
    lvmvol("volume", "create", "app", "--size", "32M")
    lvmvol("snapshot", "app", "app-s1")
    lvmvol("snapshot", "app-s1", "app-s2")
    lvmvol("volume", "create", "lonely", "--size", "32M")
    mountpoint = lvmvol("volume", "mount", "app").stdout.strip()

    lines = lvmvol("tree").stdout.splitlines()

    def line_of(name: str) -> tuple[int, str]:
        for number, line in enumerate(lines):
            if re.search(rf"(^|[^\w-]){re.escape(name)}\s", line):
                return number, line
        raise AssertionError(f"{name} not in tree:\n" + "\n".join(lines))

    def depth(line: str) -> int:
        return len(line) - len(line.lstrip(" │├└─┣┗┃━"))

    pool_number, pool_line = line_of(f"{thin_pool.vg}/pool")
    app_number, app_line = line_of("app")
    s1_number, s1_line = line_of("app-s1")
    s2_number, s2_line = line_of("app-s2")
    lonely_number, lonely_line = line_of("lonely")
    assert pool_number < app_number < s1_number < s2_number
    assert depth(pool_line) < depth(app_line) < depth(s1_line) < depth(s2_line)
    assert depth(lonely_line) == depth(app_line)
    assert mountpoint in app_line
    tree_json = json_output(lvmvol("tree", "--json"))
    mine = [pool for pool in tree_json if pool["vg"] == thin_pool.vg][0]
    assert {child["name"] for child in mine["children"]} == {"app", "app-s1", "app-s2", "lonely"}
    lvmvol("volume", "umount", "app")


def test_read_only_snapshot_rejects_writes(thin_pool, lvmvol, tmp_path):
    lvmvol("volume", "create", "ro", "--size", "64M")
    origin = lvmvol("volume", "mount", "ro").stdout.strip()
    write_file(origin, "state.txt", "kept")

    result = lvmvol("snapshot", "ro", "ro-snap", "--read-only")

    assert result.stdout == "ro-snap\n"
    row = lv_row(thin_pool.vg, "ro-snap")
    assert row["lv_attr"][1] == "r"
    device = row["lv_dm_path"]
    assert run_command(["blockdev", "--getro", device]).stdout.strip() == "1"
    written = run_command(["dd", "if=/dev/zero", f"of={device}", "bs=4k", "count=1", "oflag=direct"], check=False)
    assert written.returncode != 0
    assert "Operation not permitted" in written.stderr
    os.makedirs(tmp_path / "rw")
    assert run_command(["mount", "-w", "-t", "ext4", device, str(tmp_path / "rw")], check=False).returncode != 0
    assert mountpoints_of(device) == []

    listed = {volume["name"]: volume for volume in json_output(lvmvol("volume", "ls", "--json"))}
    assert listed["ro-snap"]["read_only"] is True
    assert listed["ro"]["read_only"] is False
    assert "read-only" in lvmvol("volume", "show", "ro-snap").stdout
    snapshot_mount = lvmvol("volume", "mount", "ro-snap", str(tmp_path / "backup")).stdout.strip()
    assert read_file(snapshot_mount, "state.txt") == "kept"
    try:
        write_file(snapshot_mount, "new.txt", "x")
        raise AssertionError("a file was written to the read-only snapshot")
    except OSError as error:
        assert error.errno == errno.EROFS
    lvmvol("volume", "umount", "ro-snap")
    lvmvol("volume", "umount", "ro")


def test_read_only_snapshot_rerun_and_children(thin_pool, lvmvol):
    lvmvol("volume", "create", "base", "--size", "32M")
    lvmvol("snapshot", "base", "base-ro", "--read-only")

    again = lvmvol("snapshot", "base", "base-ro", "--read-only", "--json")
    other_permission = lvmvol("snapshot", "base", "base-ro", check=False)
    child = lvmvol("snapshot", "base-ro", "base-ro-rw")

    assert json_output(again)["changed"] is False
    assert other_permission.returncode == 4
    assert "snapshot " + thin_pool.vg + "/base-ro exists and is read-only" in other_permission.stderr
    assert child.stdout == "base-ro-rw\n"
    # A snapshot of a read-only snapshot is writable unless --read-only is given.
    assert lv_row(thin_pool.vg, "base-ro-rw")["lv_attr"][1] == "w"
    assert lv_row(thin_pool.vg, "base-ro-rw")["origin"] == "base-ro"


def test_listings_show_origin_and_created(thin_pool, lvmvol):
    started = datetime.now(timezone.utc)
    lvmvol("volume", "create", "src", "--size", "32M")
    lvmvol("snapshot", "src", "src-s1")

    listed = {volume["name"]: volume for volume in json_output(lvmvol("volume", "ls", "--json"))}
    shown = json_output(lvmvol("volume", "show", "src-s1", "--json"))
    table = lvmvol("volume", "ls").stdout.splitlines()
    details = lvmvol("volume", "show", "src-s1").stdout

    assert listed["src-s1"]["origin"] == "src"
    assert listed["src"]["origin"] is None
    assert shown["origin"] == "src"
    created = datetime.fromisoformat(shown["created"])
    assert created.tzinfo is not None
    # lvm2 records whole seconds.
    assert started - timedelta(seconds=1) <= created <= datetime.now(timezone.utc)
    assert listed["src-s1"]["created"] == shown["created"]
    assert table[0].split()[6:8] == ["ORIGIN", "CREATED"]
    row = [line.split() for line in table if line.startswith("src-s1 ")][0]
    # SIZE takes two fields ("32.0 MiB").
    assert row[7:9] == ["src", shown["created"]]
    assert re.search(rf"^origin\s+src$", details, re.MULTILINE)
    assert re.search(rf"^created\s+{re.escape(shown['created'])}$", details, re.MULTILINE)
