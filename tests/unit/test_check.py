"""``lvmvol check``: which leftovers it reports and what its repairs run (lvmvol.ops.check)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lvmvol import devices
from lvmvol.config import Config
from lvmvol.ops import check
from lvmvol.ops.context import Context

from .fakes import FakeRunner, Reply, lv_row, lvs_output, read_data


@pytest.fixture
def check_ctx(fake_runner: FakeRunner, tmp_path: Path, mount_table, device_waits, monkeypatch: pytest.MonkeyPatch) -> Context:
    """A context whose mount_root and key_dir are in tmp_path, with the smokevg VG and no probes of real devices."""
    (tmp_path / "mnt").mkdir()
    (tmp_path / "keys").mkdir()
    # The recorded VG's loop file does not exist on this host; test_missing_loop_file uses it.
    fake_runner.reply("vgs", Reply(stdout=read_data("vgs_smokevg.json").replace("lvmvol.loopfile=/var/lib/lvmvol/smoke:20test.img", "")))
    monkeypatch.setattr(devices, "dm_open_count", lambda runner, device: 0)
    # The fixture's volumes are ext4, as blkid reports them.
    fake_runner.reply("blkid", Reply(stdout="TYPE=ext4\n"))
    return Context(config=Config(mount_root=str(tmp_path / "mnt"), key_dir=str(tmp_path / "keys")), runner=fake_runner)


def kinds(problems: list[check.Problem]) -> dict[str, str]:
    return {problem.subject: problem.kind for problem in problems}


def test_clean_state_has_no_problems(check_ctx: Context, fake_runner: FakeRunner) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")

    assert check.find_problems(check_ctx) == []


def test_incomplete_volume_and_missing_filesystem(check_ctx: Context, fake_runner: FakeRunner) -> None:
    half = lv_row("data")
    half["lv_name"] = "half"
    half["lv_tags"] += ",lvmvol.incomplete"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(lv_row("data"), half, lv_row("pool"))))
    fake_runner.reply("blkid", Reply(stdout="", returncode=2))

    problems = check.find_problems(check_ctx)

    assert kinds(problems) == {"smokevg/half": "incomplete-volume", "smokevg/data": "missing-filesystem"}
    details = {problem.subject: problem.detail for problem in problems}
    assert "blkid finds no signature where ext4 belongs" in details["smokevg/data"]


def test_mappings_orphan_and_foreign(check_ctx: Context, fake_runner: FakeRunner) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    fake_runner.reply("dmsetup ls", Reply(stdout="luks-smokevg-gone\t(254:9)\nluks-3f2a-4b\t(254:10)\nluks-smokevg-scratch\t(254:11)\n"))

    problems = check.find_problems(check_ctx)

    # luks-3f2a-4b has no VG 3f2a, and smokevg/scratch exists but is not lvmvol's.
    assert kinds(problems) == {"luks-smokevg-gone": "orphan-mapping"}
    assert problems[0].repair == "close mapping luks-smokevg-gone"


def test_mountpoint_directories(check_ctx: Context, fake_runner: FakeRunner) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    root = Path(check_ctx.config.mount_root)
    (root / "empty").mkdir()
    (root / "full").mkdir()
    (root / "full" / "file").write_text("x")
    (root / "file").write_text("not a directory")

    problems = {problem.subject: problem for problem in check.find_problems(check_ctx)}

    assert problems[str(root / "empty")].kind == "empty-mountpoint"
    assert problems[str(root / "full")].repair is None
    assert str(root / "file") not in problems


def test_key_files(check_ctx: Context, fake_runner: FakeRunner) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    keys = Path(check_ctx.config.key_dir)
    for name in ("luks-smokevg-gone.key", "luks-absentvg-x.key", "luks-smokevg-data.key", "notes.txt"):
        (keys / name).write_text("k")

    problems = check.find_problems(check_ctx)

    # Only the key of an LV that is gone from a VG that is present is an orphan.
    assert kinds(problems) == {str(keys / "luks-smokevg-gone.key"): "orphan-key-file"}


def test_missing_loop_file(check_ctx: Context, fake_runner: FakeRunner) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    fake_runner.reply_report("vgs", "vgs_smokevg.json")
    fake_runner.reply("losetup", Reply(stdout='{"loopdevices": [{"name": "/dev/loop4", "back-file": "/var/lib/lvmvol/smoke test.img (deleted)"}]}'))

    problems = check.find_problems(check_ctx)

    assert kinds(problems) == {"smokevg": "missing-loop-file"}
    assert "loop device /dev/loop4 still holds its data" in problems[0].detail
    assert problems[0].repair is None


def test_suspended_devices_come_first(check_ctx: Context, fake_runner: FakeRunner) -> None:
    half = lv_row("data")
    half["lv_name"] = "half"
    half["lv_tags"] += ",lvmvol.incomplete"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(half, lv_row("pool"))))
    fake_runner.reply("dmsetup info", Reply(stdout="smokevg-half;Suspended;0\nsysvg-root;Suspended;1\n"))

    problems = check.find_problems(check_ctx)

    assert [problem.kind for problem in problems] == ["suspended-device", "incomplete-volume"]


def test_repairs_run_expected_commands(check_ctx: Context, fake_runner: FakeRunner, tmp_path: Path) -> None:
    empty = tmp_path / "mnt" / "empty"
    empty.mkdir()
    key = tmp_path / "keys" / "luks-smokevg-gone.key"
    key.write_text("k")

    check.repair_problem(check_ctx, check.Problem("suspended-device", "smokevg-data", "", "resume", target="smokevg-data"))
    check.repair_problem(check_ctx, check.Problem("orphan-mapping", "luks-smokevg-gone", "", "close", target="luks-smokevg-gone", mountpoints=["/a", "/a/b"]))
    check.repair_problem(check_ctx, check.Problem("empty-mountpoint", str(empty), "", "rmdir", target=str(empty)))
    check.repair_problem(check_ctx, check.Problem("orphan-key-file", str(key), "", "delete", target=str(key)))

    assert fake_runner.executed_mutating() == [
        ["dmsetup", "resume", "smokevg-data"],
        ["umount", "/a/b"],
        ["umount", "/a"],
        ["cryptsetup", "close", "luks-smokevg-gone"],
    ]
    assert not empty.exists()
    assert not key.exists()


def test_dry_run_repair_changes_nothing(check_ctx: Context, fake_runner: FakeRunner, tmp_path: Path) -> None:
    fake_runner.dry_run = True
    key = tmp_path / "keys" / "luks-smokevg-gone.key"
    key.write_text("k")

    check.repair_problem(check_ctx, check.Problem("orphan-key-file", str(key), "", "delete", target=str(key)))

    assert os.path.exists(key)


def test_idle_mapping_and_unfinished_encryption(check_ctx: Context, fake_runner: FakeRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    from lvmvol.ops.inventory import Volume

    secret = dict(lv_row("data"), lv_name="secret", lv_tags="lvmvol.volume,lvmvol.fs=ext4,lvmvol.crypt=luks2,lvmvol.key=/k")
    half = dict(lv_row("data"), lv_name="half", lv_tags="lvmvol.volume,lvmvol.fs=ext4,lvmvol.encrypting=100")
    fake_runner.reply("lvs", Reply(stdout=lvs_output(secret, half, lv_row("pool"))))
    fake_runner.reply("dmsetup ls", Reply(stdout="luks-smokevg-secret\t(254:9)\n"))
    fake_runner.reply("blkid", Reply(stdout="TYPE=crypto_LUKS\n"))
    monkeypatch.setattr(Volume, "mapping_open", property(lambda volume: False))

    problems = {problem.subject: problem for problem in check.find_problems(check_ctx)}

    assert problems["luks-smokevg-secret"].kind == "idle-mapping"
    assert problems["luks-smokevg-secret"].repair == "close mapping luks-smokevg-secret"
    assert problems["smokevg/half"].kind == "unfinished-encryption"
    assert problems["smokevg/half"].repair is None
    assert "lvmvol volume encrypt half" in problems["smokevg/half"].hint
