"""The kernel's mount table: lvmvol.mounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from lvmvol import mounts
from lvmvol.mounts import MountEntry, mounts_by_device, mounts_of, parse_mountinfo

from .conftest import MOUNTINFO
from .fakes import FakeRunner

# Lines as proc(5) describes them: mount ID, parent ID, major:minor, root,
# mountpoint, mount options, optional fields, "-", type, source, super options.
SAMPLE = (
    "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
    "40 22 254:4 / /srv/with\\040space rw,relatime - ext4 /dev/mapper/vg-data rw\n"
    "41 22 254:5 / /srv/multi rw shared:7 master:3 propagate_from:2 unbindable - xfs "
    "/dev/mapper/vg-snap rw,nouuid\n"
    "42 22 254:5 /sub\\011dir /srv/tab\\011and\\012newline\\134back ro - xfs "
    "/dev/mapper/odd\\040source rw\n"
)


def test_parse_mountinfo_fields() -> None:
    entries = parse_mountinfo(SAMPLE)
    assert entries[0] == MountEntry(
        major=98,
        minor=0,
        root="/mnt1",
        mountpoint="/mnt2",
        fstype="ext3",
        source="/dev/root",
        options="rw,noatime",
    )


def test_mounts_by_device_matches_mounts_of() -> None:
    entries = parse_mountinfo(SAMPLE)

    grouped = mounts_by_device(entries)

    assert sorted(grouped) == [(98, 0), (254, 4), (254, 5)]
    for major, minor in grouped:
        assert grouped[(major, minor)] == mounts_of(entries, major, minor)


def test_parse_mountinfo_count() -> None:
    assert len(parse_mountinfo(SAMPLE)) == 4


def test_parse_mountinfo_space_escape() -> None:
    entry = parse_mountinfo(SAMPLE)[1]
    assert entry.mountpoint == "/srv/with space"


def test_parse_mountinfo_no_optional_fields() -> None:
    entry = parse_mountinfo(SAMPLE)[1]
    assert (entry.major, entry.minor) == (254, 4)
    assert entry.fstype == "ext4"
    assert entry.source == "/dev/mapper/vg-data"


def test_parse_mountinfo_several_optional_fields() -> None:
    entry = parse_mountinfo(SAMPLE)[2]
    assert entry.mountpoint == "/srv/multi"
    assert entry.fstype == "xfs"
    assert entry.source == "/dev/mapper/vg-snap"
    assert entry.options == "rw"


def test_parse_mountinfo_other_escapes() -> None:
    entry = parse_mountinfo(SAMPLE)[3]
    assert entry.root == "/sub\tdir"
    assert entry.mountpoint == "/srv/tab\tand\nnewline\\back"
    assert entry.source == "/dev/mapper/odd source"
    assert entry.options == "ro"


def test_parse_mountinfo_skips_bad_lines() -> None:
    text = "\n" "garbage without separator\n" "1 2 3:4 - ext4\n" "1 2 3:4 / /x rw - ext4\n" + SAMPLE
    assert len(parse_mountinfo(text)) == 4


def test_parse_mountinfo_empty() -> None:
    assert parse_mountinfo("") == []


def test_parse_mountinfo_fixture_table() -> None:
    entries = parse_mountinfo(MOUNTINFO)
    assert [entry.mountpoint for entry in entries] == ["/", "/dev", "/var/lib/lvmvol/data set"]


def test_mounts_of_matches_device() -> None:
    entries = parse_mountinfo(SAMPLE)
    found = mounts_of(entries, 254, 5)
    assert [entry.mountpoint for entry in found] == ["/srv/multi", "/srv/tab\tand\nnewline\\back"]


def test_mounts_of_no_match() -> None:
    assert mounts_of(parse_mountinfo(SAMPLE), 254, 9) == []


@pytest.mark.parametrize(("major", "minor"), [(None, None), (254, None), (None, 4)])
def test_mounts_of_inactive_device(major, minor) -> None:
    # An inactive LV has no kernel numbers; it must not match anything.
    assert mounts_of(parse_mountinfo(SAMPLE), major, minor) == []


def test_read_mount_table_own_process() -> None:
    entries = mounts.read_mount_table()
    assert any(entry.mountpoint == "/" for entry in entries)


def test_read_mount_table_non_utf8(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_bytes(b"50 22 8:17 / /media/caf\xe9 rw - vfat /dev/sdb1 rw\n")
    monkeypatch.setattr(mounts, "MOUNTINFO", str(mountinfo))
    entries = mounts.read_mount_table()
    assert len(entries) == 1


def test_mount_argv() -> None:
    runner = FakeRunner()
    mounts.mount(runner, "/dev/mapper/vg-data", "/srv/data", "xfs", ["nouuid"])
    assert runner.calls[0].argv == ["mount", "-t", "xfs", "-o", "nouuid", "/dev/mapper/vg-data", "/srv/data"]
    assert runner.calls[0].mutating


def test_mount_argv_no_options() -> None:
    runner = FakeRunner()
    mounts.mount(runner, "/dev/mapper/vg-data", "/srv/data", "ext4", [])
    assert runner.calls[0].argv == ["mount", "-t", "ext4", "/dev/mapper/vg-data", "/srv/data"]


def test_umount_argv() -> None:
    runner = FakeRunner()
    mounts.umount(runner, "/srv/data")
    assert runner.calls[0].argv == ["umount", "/srv/data"]
    assert runner.calls[0].mutating
