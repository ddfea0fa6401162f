"""Parsing and logic of boot activation, boot mounts, resize and the systemd units."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lvmvol import fs, tags
from lvmvol.cli import cli
from lvmvol.config import Config
from lvmvol.errors import InvalidInput
from lvmvol.ops import activation, units
from lvmvol.ops.context import Context
from lvmvol.ops.pool_extend import _largest_data_size
from lvmvol.ops.pools import metadata_size_for, record_loop_file, recorded_loop_files
from lvmvol.ops.resize import resize_volume
from lvmvol.units import parse_size_change

from .fakes import FakeRunner

MiB = 1024 * 1024

# The lines of 'dumpe2fs -h' (e2fsprogs 1.47.0) that the size comes from,
# with neighbours of the same form; written in that format by hand.
DUMPE2FS_HEADER = """\
Filesystem volume name:   <none>
Block count:              98304
Reserved block count:     4915
Free blocks:              80132
Block size:               1024
Fragment size:            1024
"""

# 'xfs_info' output (xfsprogs 6.1.0) for a 384 MiB filesystem, written in that format by hand.
XFS_INFO = """\
meta-data=/dev/mapper/vg-grow    isize=512    agcount=5, agsize=20480 blks
         =                       sectsz=512   attr=2, projid32bit=1
data     =                       bsize=4096   blocks=98304, imaxpct=25
         =                       sunit=16     swidth=16 blks
naming   =version 2              bsize=4096   ascii-ci=0, ftype=1
log      =internal log           bsize=4096   blocks=16384, version=2
realtime =none                   extsz=4096   blocks=0, rtextents=0
"""


def test_parse_size_change_absolute_and_relative() -> None:
    assert parse_size_change("1G") == (1024 * MiB, False)
    assert parse_size_change("+64M") == (64 * MiB, True)
    with pytest.raises(InvalidInput):
        parse_size_change("+64")


def test_parse_dumpe2fs_size() -> None:
    assert fs.parse_dumpe2fs_size(DUMPE2FS_HEADER) == 98304 * 1024


def test_parse_xfs_info_size_reads_data_section() -> None:
    assert fs.parse_xfs_info_size(XFS_INFO) == 98304 * 4096


def test_setting_values_decodes_each_tag() -> None:
    stored = [tags.setting_tag(tags.LOOP_FILE, "/srv/a b.img"), "lvmvol.pool", tags.setting_tag(tags.LOOP_FILE, "/x")]
    assert tags.setting_values(stored, tags.LOOP_FILE) == ["/srv/a b.img", "/x"]


def test_loop_file_list_records_once(ctx: Context) -> None:
    assert record_loop_file(ctx, "/srv/pool.img") is True
    assert record_loop_file(ctx, "/srv/pool.img") is False
    assert recorded_loop_files(ctx) == ["/srv/pool.img"]


def test_unit_text_starts_running_interpreter() -> None:
    text = units.unit_text("lvmvol-activate.service", python="/opt/lvmvol/bin/python")
    assert "ExecStart=/opt/lvmvol/bin/python -m lvmvol activate" in text
    assert "Type=oneshot" in text
    assert "RemainAfterExit=yes" in text


def test_install_units_writes_then_unchanged(ctx: Context, tmp_path: Path) -> None:
    first = units.install_units(ctx, str(tmp_path))
    second = units.install_units(ctx, str(tmp_path))

    unit = tmp_path / "lvmvol-activate.service"
    assert first.changed is True
    assert second.changed is False
    assert unit.read_text() == units.unit_text("lvmvol-activate.service")
    assert oct(unit.stat().st_mode & 0o777) == "0o644"


def test_resize_refuses_shrink(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    with pytest.raises(InvalidInput, match="cannot shrink"):
        resize_volume(ctx, "data", 50 * MiB, relative=False)
    assert fake_runner.executed_mutating() == []


def test_resize_to_same_extents_unmounted_is_no_op(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    # vol1 is 300 MiB and unmounted; 299 MiB rounds up to the same 4 MiB extents.
    outcome = resize_volume(ctx, "vol1", 299 * MiB, relative=False)
    assert outcome.changed is False
    assert fake_runner.executed_mutating() == []


def test_activate_cli_exits_8_when_something_failed(monkeypatch, fake_runner: FakeRunner, tmp_path: Path) -> None:
    report = activation.ActivationReport(
        [
            activation.Item("pool", "vg/pool", ok=True),
            activation.Item("volume", "vg/db", ok=False, error="key file /k not found"),
        ]
    )
    monkeypatch.setattr(activation, "activate_all", lambda ctx: report)
    context = Context(config=Config(loop_file_list=str(tmp_path / "loop-files")), runner=fake_runner)

    result = CliRunner().invoke(cli, ["activate"], obj={"context": context})

    assert result.exit_code == 8
    assert "pool vg/pool: unchanged" in result.output
    assert "lvmvol: error: volume vg/db: key file /k not found" in result.output


def test_largest_pool_data_leaves_room_for_metadata() -> None:
    extent = 4 * MiB
    # 10 GiB free on a 1 GiB pool with 4 MiB metadata: the metadata grows to
    # 1/512 of the data, and its spare grows with it.
    data = _largest_data_size(1024 * MiB, 4 * MiB, 10 * 1024 * MiB, extent)
    metadata = metadata_size_for(data, extent)

    assert data % extent == 0
    assert (data - 1024 * MiB) + 2 * (metadata - 4 * MiB) <= 10 * 1024 * MiB
    assert (data + extent - 1024 * MiB) + 2 * (metadata_size_for(data + extent, extent) - 4 * MiB) > 10 * 1024 * MiB


def test_largest_pool_data_without_free_space_is_current() -> None:
    assert _largest_data_size(400 * MiB, 4 * MiB, 0, 4 * MiB) == 400 * MiB
