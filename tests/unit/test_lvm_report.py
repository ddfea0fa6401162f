"""lvm2 JSON reports and command lines: lvmvol.lvm."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from lvmvol import lvm

from .fakes import FakeRunner, Reply, lv_row, read_data, report_rows

MiB = 1024 * 1024
RECORDED = ["lvs_smokevg.json", "lvs_two_vgs.json", "vgs_smokevg.json", "pvs_smokevg.json"]


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_report_is_json(name: str) -> None:
    document = json.loads(read_data(name))
    assert list(document) == ["report"]


@pytest.mark.parametrize(
    ("name", "kind", "fields"),
    [
        ("lvs_smokevg.json", "lv", lvm.LV_FIELDS),
        ("lvs_two_vgs.json", "lv", lvm.LV_FIELDS),
        ("vgs_smokevg.json", "vg", lvm.VG_FIELDS),
        ("pvs_smokevg.json", "pv", lvm.PV_FIELDS),
    ],
)
def test_recorded_rows_have_every_field(name: str, kind: str, fields: list[str]) -> None:
    for row in report_rows(name, kind):
        assert set(row) == set(fields)
        assert all(isinstance(value, str) for value in row.values())


def test_parse_report_empty_output() -> None:
    assert lvm.parse_report("", "lv") == []
    assert lvm.parse_report("  \n", "lv") == []


def test_parse_report_no_rows() -> None:
    assert lvm.parse_report('{"report": [{"lv": []}]}', "lv") == []


def test_parse_report_other_kind() -> None:
    assert lvm.parse_report(read_data("lvs_smokevg.json"), "vg") == []


def test_parse_report_several_sections() -> None:
    output = json.dumps({"report": [{"lv": [{"lv_name": "a"}]}, {"lv": [{"lv_name": "b"}]}]})
    assert [row["lv_name"] for row in lvm.parse_report(output, "lv")] == ["a", "b"]


def test_parse_report_with_log_section() -> None:
    output = json.dumps({"report": [{"lv": [{"lv_name": "a"}]}], "log": [{"log_seq_num": "1"}]})
    assert [row["lv_name"] for row in lvm.parse_report(output, "lv")] == ["a"]


def test_parse_lv_thin_pool() -> None:
    pool = lvm.parse_lv(lv_row("pool"))
    assert pool.name == "pool"
    assert pool.vg == "smokevg"
    assert pool.full_name == "smokevg/pool"
    assert pool.uuid == "QyN4uX-kM8s-3bTf-Rw6L-dH2p-Vc9E-Za1oJg"
    assert pool.attr == "twi-aotz--"
    assert pool.segtype == "thin-pool"
    assert pool.size == 200 * MiB
    assert pool.tags == ["lvmvol.pool"]
    assert pool.active is True
    assert pool.open is True
    assert pool.skip_activation is False
    assert pool.dm_path == "/dev/mapper/smokevg-pool"
    assert (pool.major, pool.minor) == (254, 2)
    assert pool.data_percent == 12.5
    assert pool.metadata_percent == 10.64
    assert pool.metadata_size == 4 * MiB
    assert pool.extent_size == 4 * MiB
    assert pool.vg_size == 255 * 4 * MiB
    assert pool.vg_free == 161 * 4 * MiB


def test_parse_lv_time() -> None:
    pool = lvm.parse_lv(lv_row("pool"))
    assert pool.created == datetime(2026, 12, 4, 19, 53, 7, tzinfo=timezone.utc)


def test_parse_lv_time_offset() -> None:
    row = lv_row("pool")
    row["lv_time"] = "2026-12-04 20:53:07 +0100"
    created = lvm.parse_lv(row).created
    assert created.utcoffset() == timedelta(hours=1)
    assert created == datetime(2026, 12, 4, 19, 53, 7, tzinfo=timezone.utc)


def test_parse_lv_time_negative_offset() -> None:
    row = lv_row("pool")
    row["lv_time"] = "2026-12-04 14:23:07 -0530"
    created = lvm.parse_lv(row).created
    assert created.utcoffset() == -timedelta(hours=5, minutes=30)
    assert created == datetime(2026, 12, 4, 19, 53, 7, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "text", ["", "yesterday", "2026-13-04 19:53:07 +0000", "2026-12-04 19:53:07", "2026-12-04T19:53:07 +0000"]
)
def test_parse_lv_time_missing(text: str) -> None:
    row = lv_row("pool")
    row["lv_time"] = text
    assert lvm.parse_lv(row).created is None


def test_parse_lv_active_snapshot() -> None:
    snap = lvm.parse_lv(lv_row("snap1"))
    assert snap.attr == "Vwi-a-tz--"
    assert snap.segtype == "thin"
    assert snap.pool == "pool"
    assert snap.origin == "vol1"
    assert snap.active is True
    assert snap.open is False
    assert (snap.major, snap.minor) == (254, 5)
    assert snap.tags == ["lvmvol.fs=ext4", "lvmvol.volume"]


def test_parse_lv_inactive_volume() -> None:
    volume = lvm.parse_lv(lv_row("vol1"))
    assert volume.attr == "Vwi---tz-k"
    assert volume.active is False
    assert volume.open is False
    assert volume.skip_activation is True
    assert volume.major is None
    assert volume.minor is None
    assert volume.origin == ""


def test_parse_lv_non_pool_percent() -> None:
    volume = lvm.parse_lv(lv_row("data"))
    assert volume.data_percent is None
    assert volume.metadata_percent is None
    assert volume.metadata_size == 0


def test_parse_lv_pool_zero_percent() -> None:
    pool = lvm.parse_lv(lv_row("otherpool"))
    assert pool.data_percent == 0.0
    assert pool.tags == []


def test_parse_lv_read_only() -> None:
    row = lv_row("snap1")
    assert lvm.parse_lv(row).read_only is False
    row["lv_attr"] = "Vri-a-tz--"
    assert lvm.parse_lv(row).read_only is True


def test_parse_lv_minimal_row() -> None:
    lv = lvm.parse_lv({"lv_name": "x", "vg_name": "vg"})
    assert lv.size == 0
    assert lv.tags == []
    assert lv.created is None
    assert lv.active is False
    assert lv.major is None
    assert lv.data_percent is None
    assert lv.read_only is False


def test_parse_lv_every_recorded_row() -> None:
    parsed = [lvm.parse_lv(row) for row in report_rows("lvs_smokevg.json", "lv")]
    assert [lv.name for lv in parsed] == ["data", "otherpool", "pool", "scratch", "snap1", "vol1"]
    assert all(lv.created is not None for lv in parsed)


def test_parse_vg() -> None:
    rows = report_rows("vgs_smokevg.json", "vg")
    vg = lvm.parse_vg(rows[0])
    assert vg.name == "smokevg"
    assert vg.size == 1069547520
    assert vg.free == 675282944
    assert vg.extent_size == 4 * MiB
    assert vg.extent_count == 255
    assert vg.free_count == 161
    assert vg.tags == ["lvmvol.loopfile=/var/lib/lvmvol/smoke:20test.img"]
    assert vg.pv_count == 1


def test_parse_vg_no_tags() -> None:
    vg = lvm.parse_vg(report_rows("vgs_smokevg.json", "vg")[1])
    assert vg.name == "sysvg"
    assert vg.tags == []
    assert vg.free == 0
    assert vg.pv_count == 2


def test_parse_pv() -> None:
    pv = lvm.parse_pv(report_rows("pvs_smokevg.json", "pv")[0])
    assert pv.name == "/dev/loop0"
    assert pv.vg == "smokevg"
    assert pv.uuid == "c4VbNm-1QwE-rT5y-Ui8O-pA2s-Df6G-Hj9kLz"
    assert pv.size == 1069547520


def test_parse_pv_orphan() -> None:
    pv = lvm.parse_pv(report_rows("pvs_smokevg.json", "pv")[1])
    assert pv.vg == ""
    assert pv.size == 512 * MiB


def test_parse_pv_size_falls_back_to_device() -> None:
    pv = lvm.parse_pv({"pv_name": "/dev/sdb", "pv_size": "", "dev_size": "1073741824"})
    assert pv.size == 1073741824


def test_list_lvs_argv() -> None:
    runner = FakeRunner()
    runner.reply_report("lvs", "lvs_smokevg.json")
    found = lvm.list_lvs(runner)
    argv = runner.calls[0].argv
    assert argv[:6] == ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix"]
    assert argv[6:] == ["-o", ",".join(lvm.LV_FIELDS)]
    assert runner.calls[0].mutating is False
    assert len(found) == 6


def test_list_lvs_hidden_in_vg() -> None:
    runner = FakeRunner()
    lvm.list_lvs(runner, "smokevg", hidden=True)
    assert runner.calls[0].argv[-2:] == ["-a", "smokevg"]


def test_list_vgs() -> None:
    runner = FakeRunner()
    runner.reply_report("vgs", "vgs_smokevg.json")
    found = lvm.list_vgs(runner)
    assert [vg.name for vg in found] == ["smokevg", "sysvg"]
    assert runner.calls[0].argv[-1] == ",".join(lvm.VG_FIELDS)


def test_list_pvs() -> None:
    runner = FakeRunner()
    runner.reply_report("pvs", "pvs_smokevg.json")
    assert [pv.name for pv in lvm.list_pvs(runner)] == ["/dev/loop0", "/dev/loop1"]


def test_list_lvs_no_output() -> None:
    runner = FakeRunner()
    runner.reply("lvs", Reply(stdout=""))
    assert lvm.list_lvs(runner) == []


def test_create_thin_volume_argv() -> None:
    runner = FakeRunner()
    lvm.create_thin_volume(runner, "vg", "pool", "data", 100 * MiB, ["lvmvol.volume", "lvmvol.fs=ext4"])
    assert runner.calls[0].argv == [
        "lvcreate", "--type", "thin", "--virtualsize", "104857600b", "--thinpool", "pool",
        "--name", "data", "--wipesignatures", "y", "--yes",
        "--addtag", "lvmvol.volume", "--addtag", "lvmvol.fs=ext4", "vg",
    ]
    assert runner.calls[0].mutating


def test_create_thin_pool_argv() -> None:
    runner = FakeRunner()
    lvm.create_thin_pool(runner, "vg", "pool", 200 * MiB, 4 * MiB, ["lvmvol.pool"])
    assert runner.calls[0].argv == [
        "lvcreate", "--type", "thin-pool", "--size", "209715200b",
        "--poolmetadatasize", "4194304b", "--name", "pool", "--yes",
        "--addtag", "lvmvol.pool", "vg",
    ]


def test_create_thin_snapshot_argv() -> None:
    runner = FakeRunner()
    lvm.create_thin_snapshot(runner, "vg", "data", "snap", ["lvmvol.volume"])
    assert runner.calls[0].argv == [
        "lvcreate", "--snapshot", "--name", "snap", "--setactivationskip", "n", "--yes",
        "--addtag", "lvmvol.volume", "vg/data",
    ]


def test_activate_ignores_activation_skip() -> None:
    runner = FakeRunner()
    lvm.activate(runner, "vg", "snap")
    assert runner.calls[0].argv == ["lvchange", "--activate", "y", "--ignoreactivationskip", "vg/snap"]


def test_change_tags_argv() -> None:
    runner = FakeRunner()
    lvm.change_tags(runner, "vg", "data", add=["a"], remove=["lvmvol.incomplete"])
    assert runner.calls[0].argv == ["lvchange", "--addtag", "a", "--deltag", "lvmvol.incomplete", "vg/data"]


def test_pvcreate_has_no_yes() -> None:
    # A prompt about a signature lvmvol missed must read end-of-file and fail.
    runner = FakeRunner()
    lvm.pvcreate(runner, "/dev/sdb")
    assert runner.calls[0].argv == ["pvcreate", "/dev/sdb"]
    assert runner.calls[0].input is None
