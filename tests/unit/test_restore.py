"""``volume restore`` with a fake runner: the journal tags, the order of steps and resuming.

The recorded report has volume vol1 (inactive, thin device 3) and its
snapshot snap1 (active, thin device 2). A merge is shown by serving a
second report in which vol1 has snap1's thin device id and snap1 is gone.
"""

from __future__ import annotations

import os
import signal

import pytest

from lvmvol.errors import Conflict, InvalidInput, NotFound
from lvmvol.ops import context, removal
from lvmvol.ops.context import Context
from lvmvol.ops.restore import restore_volume

from .fakes import FakeRunner, Reply, lv_row, lvs_output

MARK = ["lvmvol.restorefrom=snap1", "lvmvol.restorethin=3", "lvmvol.restore.fs=ext4"]


@pytest.fixture
def restore_runner(fake_runner: FakeRunner, mount_table, device_waits, monkeypatch: pytest.MonkeyPatch) -> FakeRunner:
    monkeypatch.setattr(removal, "mounts_in_other_namespaces", lambda major, minor: [])
    monkeypatch.setattr(removal.devices, "holders", lambda device: [])
    return fake_runner


def row(name: str, **changes: str) -> dict[str, str]:
    result = lv_row(name)
    result.update(changes)
    return result


def with_tags(name: str, extra: list[str], **changes: str) -> dict[str, str]:
    tags = sorted(row(name)["lv_tags"].split(",") + extra)
    return row(name, lv_tags=",".join(tags), **changes)


def serve(runner: FakeRunner, *reports: list[dict[str, str]]) -> None:
    runner.reply("lvs", *(Reply(stdout=lvs_output(row("pool"), *rows)) for rows in reports))


def merged_vol1(extra: list[str]) -> dict[str, str]:
    """vol1 after the merge: snap1's thin device under vol1's name and tags, inactive."""
    return with_tags("vol1", extra, thin_id="2")


def test_restore_steps_in_order(ctx: Context, restore_runner: FakeRunner) -> None:
    after_merge = [merged_vol1(MARK)]
    serve(restore_runner, [row("vol1"), row("snap1")], after_merge, after_merge)

    outcome = restore_volume(ctx, "snap1")

    assert outcome.name == "vol1"
    assert outcome.details["snapshot_kept"] is False
    assert restore_runner.executed_mutating() == [
        ["lvchange", *[arg for tag in MARK for arg in ("--addtag", tag)], "smokevg/vol1"],
        ["lvchange", "--activate", "n", "smokevg/snap1"],
        ["lvconvert", "--merge", "smokevg/snap1"],
        ["lvchange", "--activate", "y", "--ignoreactivationskip", "smokevg/vol1"],
        ["lvchange", *[arg for tag in sorted(MARK) for arg in ("--deltag", tag)], "smokevg/vol1"],
    ]


def test_restore_resumes_after_merge(ctx: Context, restore_runner: FakeRunner) -> None:
    after_merge = [merged_vol1(MARK)]
    serve(restore_runner, after_merge, after_merge)

    outcome = restore_volume(ctx, "snap1")

    assert outcome.details["resumed"] is True
    assert "lvconvert" not in restore_runner.commands()
    assert restore_runner.executed_mutating()[-1][0:2] == ["lvchange", "--deltag"]


def test_restore_resumes_before_merge(ctx: Context, restore_runner: FakeRunner) -> None:
    marked = with_tags("vol1", MARK)
    after_merge = [merged_vol1(MARK)]
    serve(restore_runner, [marked, row("snap1")], after_merge, after_merge)

    restore_volume(ctx, "snap1")

    mutating = restore_runner.executed_mutating()
    assert ["lvconvert", "--merge", "smokevg/snap1"] in mutating
    assert not any("--addtag" in argv for argv in mutating)


def test_restore_keep_snapshot_copies_and_renames(ctx: Context, restore_runner: FakeRunner) -> None:
    copy_tags = ["lvmvol.restorecopy=vol1"]
    after_merge = [merged_vol1(MARK), with_tags("snap1", copy_tags, lv_name="snap1+keep", origin="vol1", thin_id="4")]
    renamed = [merged_vol1(MARK), with_tags("snap1", copy_tags, origin="vol1", thin_id="4")]
    serve(restore_runner, [row("vol1"), row("snap1")], after_merge, renamed)

    outcome = restore_volume(ctx, "snap1", keep_snapshot=True)

    assert outcome.details["snapshot_kept"] is True
    mutating = restore_runner.executed_mutating()
    create = next(argv for argv in mutating if argv[0] == "lvcreate")
    assert create[-1] == "smokevg/snap1"
    assert create[create.index("--name") + 1] == "snap1+keep"
    assert "lvmvol.restorecopy=vol1" in create
    assert create[-3:-1] == ["--activate", "n"]
    assert ["lvrename", "smokevg", "snap1+keep", "snap1"] in mutating
    assert ["lvchange", "--deltag", "lvmvol.restorecopy=vol1", "smokevg/snap1"] in mutating


def test_restore_refuses_mounted_origin(ctx: Context, restore_runner: FakeRunner) -> None:
    # The fixture mount table mounts device 254:4 at /var/lib/lvmvol/data set.
    mounted = row("data", lv_kernel_minor="4")
    serve(restore_runner, [mounted, row("snap1", origin="data")])

    with pytest.raises(Conflict) as raised:
        restore_volume(ctx, "snap1")

    assert "mounted at /var/lib/lvmvol/data set" in str(raised.value)
    assert restore_runner.executed_mutating() == []


def test_restore_not_a_snapshot(ctx: Context, restore_runner: FakeRunner) -> None:
    serve(restore_runner, [row("vol1")])
    with pytest.raises(InvalidInput):
        restore_volume(ctx, "vol1")
    assert restore_runner.executed_mutating() == []


def test_restore_abandoned_when_snapshot_gone(ctx: Context, restore_runner: FakeRunner) -> None:
    serve(restore_runner, [with_tags("vol1", MARK)])

    with pytest.raises(NotFound) as raised:
        restore_volume(ctx, "snap1")

    assert "abandoned" in str(raised.value)
    assert restore_runner.executed_mutating() == [
        ["lvchange", *[arg for tag in sorted(MARK) for arg in ("--deltag", tag)], "smokevg/vol1"],
    ]


def test_before_step_kills_only_named_step(monkeypatch: pytest.MonkeyPatch) -> None:
    killed = []
    monkeypatch.setattr(os, "kill", lambda pid, number: killed.append((pid, number)))
    monkeypatch.setenv(context.FAULT_VARIABLE, "create:mkfs,restore:merge")

    context.before_step("restore", "mark")
    context.before_step("restore", "merge")

    assert killed == [(os.getpid(), signal.SIGKILL)]


def test_restore_resume_kept_snapshot_without_tag(ctx: Context, restore_runner: FakeRunner) -> None:
    # Killed between the two tag changes of the last step: the kept
    # snapshot lost its journal tag, the origin still has its own.
    after = [merged_vol1(MARK), row("snap1", origin="vol1", thin_id="4")]
    serve(restore_runner, after, after)

    outcome = restore_volume(ctx, "snap1", keep_snapshot=True)

    assert outcome.details["snapshot_kept"] is True
    assert outcome.notes == []
    assert ["lvchange", "--activate", "y", "--ignoreactivationskip", "smokevg/snap1"] in restore_runner.executed_mutating()
