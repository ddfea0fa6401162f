"""``lvmvol pool rm`` with a fake runner (lvmvol.ops.pool_removal)."""

from __future__ import annotations

import json

import pytest

from lvmvol.errors import Conflict
from lvmvol.ops.context import Context
from lvmvol.ops.pool_removal import remove_pool

from .fakes import FakeRunner, Reply, lv_row, lvs_output


def vgs_output(tags: str) -> str:
    row = {"vg_name": "smokevg", "vg_size": "1069547520", "vg_free": "0", "vg_extent_size": "4194304",
           "vg_extent_count": "255", "vg_free_count": "0", "vg_tags": tags, "pv_count": "1"}
    return json.dumps({"report": [{"vg": [row]}]})


PVS = json.dumps({"report": [{"pv": [{"pv_name": "/dev/loop4", "vg_name": "smokevg", "pv_uuid": "u", "pv_size": "1"}]}]})


@pytest.fixture
def empty_pool_runner(fake_runner: FakeRunner, mount_table, device_waits) -> FakeRunner:
    """smokevg with only the empty lvmvol pool, then (after lvremove) only lvm2's spare metadata LV."""
    spare = dict(lv_row("pool"), lv_name="[lvol0_pmspare]", lv_tags="", segtype="linear")
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"))), Reply(stdout=lvs_output(spare)))
    fake_runner.reply("pvs", Reply(stdout=PVS))
    return fake_runner


def test_refuses_pool_with_volumes(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")

    with pytest.raises(Conflict) as raised:
        remove_pool(ctx, "smokevg/pool")

    assert "contains 3 volume(s): data, snap1, vol1" in str(raised.value)
    assert "--force --yes" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_force_needs_confirmation(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")

    with pytest.raises(Conflict) as raised:
        remove_pool(ctx, "smokevg/pool", force=True, confirm=lambda question: False)

    assert "confirmation declined" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_refuses_foreign_thin_volume(ctx: Context, fake_runner: FakeRunner, mount_table, device_waits) -> None:
    foreign = dict(lv_row("data"), lv_name="theirs", lv_tags="")
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), foreign)))

    with pytest.raises(Conflict) as raised:
        remove_pool(ctx, "smokevg/pool", force=True, confirm=lambda question: True)

    assert "lvmvol does not manage: theirs" in str(raised.value)
    assert fake_runner.executed_mutating() == []


def test_removes_vg_lvmvol_created(ctx: Context, empty_pool_runner: FakeRunner) -> None:
    empty_pool_runner.reply("vgs", Reply(stdout=vgs_output("lvmvol.vg")))

    outcome = remove_pool(ctx, "smokevg/pool")

    assert empty_pool_runner.executed_mutating() == [
        ["lvremove", "--yes", "smokevg/pool"],
        ["vgremove", "--yes", "smokevg"],
        ["pvremove", "/dev/loop4"],
    ]
    assert outcome.details["vg_removed"] is True


def test_keeps_vg_lvmvol_did_not_create(ctx: Context, empty_pool_runner: FakeRunner) -> None:
    empty_pool_runner.reply("vgs", Reply(stdout=vgs_output("")))

    outcome = remove_pool(ctx, "smokevg/pool")

    assert empty_pool_runner.executed_mutating() == [["lvremove", "--yes", "smokevg/pool"]]
    assert outcome.notes == ["volume group smokevg stays because lvmvol did not create it"]


def test_detaches_and_deletes_loop_file(ctx: Context, empty_pool_runner: FakeRunner, tmp_path) -> None:
    backing = tmp_path / "pool file.img"
    backing.write_bytes(b"")
    tag = "lvmvol.loopfile=" + str(backing).replace(" ", ":20")
    empty_pool_runner.reply("vgs", Reply(stdout=vgs_output(f"lvmvol.vg,{tag}")))
    losetup = {"loopdevices": [{"name": "/dev/loop4", "back-file": str(backing)}]}
    empty_pool_runner.reply("losetup", Reply(stdout=json.dumps(losetup)))

    outcome = remove_pool(ctx, "smokevg/pool")

    assert empty_pool_runner.executed_mutating()[-1] == ["losetup", "--detach", "/dev/loop4"]
    assert not backing.exists()
    assert outcome.details["files_removed"] == [str(backing)]


def test_missing_pool_finishes_vg_cleanup(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output()))
    fake_runner.reply("vgs", Reply(stdout=vgs_output("lvmvol.vg")))
    fake_runner.reply("pvs", Reply(stdout=PVS))

    outcome = remove_pool(ctx, "smokevg/pool")

    assert outcome.changed is True
    assert fake_runner.executed_mutating() == [["vgremove", "smokevg"], ["pvremove", "/dev/loop4"]]


def test_missing_pool_without_vg_is_unchanged(ctx: Context, fake_runner: FakeRunner, mount_table) -> None:
    fake_runner.reply("lvs", Reply(stdout=lvs_output()))

    outcome = remove_pool(ctx, "pool")

    assert outcome.changed is False
    assert fake_runner.executed_mutating() == []
