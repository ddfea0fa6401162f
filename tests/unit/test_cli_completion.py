"""Live-name completion: the shell_complete callbacks, run through Click's bash completion protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lvmvol.cli import cli, common
from lvmvol.cli.completion import free_block_devices
from lvmvol.errors import CommandError
from lvmvol.ops.context import Context

from .conftest import unit_config
from .fakes import FakeRunner, Reply


@pytest.fixture
def complete(fake_runner: FakeRunner, mount_table, monkeypatch: pytest.MonkeyPatch):
    """Return ``complete(line)``, the names that bash completion offers for the last word of ``line``.

    The runner that completion builds is the fake runner, so the test also
    sees whether completion asked for a dry run.
    """
    built: list[dict] = []

    def make_runner(timeout: float, dry_run: bool) -> FakeRunner:
        built.append({"timeout": timeout, "dry_run": dry_run})
        fake_runner.dry_run = dry_run
        return fake_runner

    monkeypatch.setattr(common, "Runner", make_runner)

    def run(line: str) -> list[str]:
        words = line.split(" ")
        environment = {
            "_LVMVOL_COMPLETE": "bash_complete",
            "COMP_WORDS": line,
            "COMP_CWORD": str(len(words) - 1),
        }
        result = CliRunner().invoke(cli, [], prog_name="lvmvol", env=environment)
        assert result.exit_code == 0, result.output
        # Click writes one "type,value" row a name, and an empty line when there is none.
        return [row.partition(",")[2] for row in result.output.splitlines() if row]

    run.built = built
    return run


def test_volume_names_complete(complete, fake_runner: FakeRunner) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")

    assert sorted(complete("lvmvol volume mount ")) == ["data", "snap1", "vol1"]
    assert complete("lvmvol volume umount vo") == ["vol1"]
    assert complete("lvmvol snapshot d") == ["data"]
    assert sorted(complete("lvmvol volume rm data ")) == ["data", "snap1", "vol1"]


def test_restore_completes_snapshots_only(complete, fake_runner: FakeRunner) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")

    assert complete("lvmvol volume restore ") == ["snap1"]


def test_pool_names_complete(complete, fake_runner: FakeRunner) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")

    assert complete("lvmvol volume create db --pool ") == ["pool", "smokevg/pool"]
    assert complete("lvmvol pool rm smoke") == ["smokevg/pool"]
    assert complete("lvmvol pool extend p") == ["pool"]


def test_completion_changes_nothing(complete, fake_runner: FakeRunner) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")

    complete("lvmvol volume mount ")

    assert complete.built == [{"timeout": 5.0, "dry_run": True}]
    assert fake_runner.commands() == ["lvs"]
    assert fake_runner.executed_mutating() == []


def test_completion_takes_no_lock(complete, fake_runner: FakeRunner, command_lock_in_tmp: Path) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")

    complete("lvmvol volume rm ")

    assert not command_lock_in_tmp.exists()


def test_completion_empty_without_root(complete, fake_runner: FakeRunner, effective_uid: list[int]) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    effective_uid[0] = 1000

    assert complete("lvmvol volume mount ") == []
    assert fake_runner.commands() == []


def test_completion_silent_when_lvm_fails(complete, fake_runner: FakeRunner) -> None:
    fake_runner.reply("lvs", Reply(stderr="  /dev/mapper/control: open failed", returncode=5))

    assert complete("lvmvol volume mount ") == []


def test_completion_silent_without_lvm2(complete, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args, **kwargs):
        raise CommandError(["lvs"], 127, "lvs: command not found", 0.0)

    monkeypatch.setattr("lvmvol.lvm.list_lvs", missing)

    assert complete("lvmvol volume mount ") == []


def make_block_device(
    sys_block: Path,
    name: str,
    numbers: str,
    sectors: int = 2048,
    read_only: bool = False,
    holders: tuple[str, ...] = (),
    partitions: tuple[str, ...] = (),
) -> None:
    """Create the sysfs files of one block device under ``sys_block``."""
    entry = sys_block / name
    (entry / "holders").mkdir(parents=True)
    (entry / "dev").write_text(f"{numbers}\n")
    (entry / "size").write_text(f"{sectors}\n")
    (entry / "ro").write_text("1\n" if read_only else "0\n")
    for holder in holders:
        (entry / "holders" / holder).mkdir()
    for partition in partitions:
        (entry / partition).mkdir()
        (entry / partition / "partition").write_text("1\n")


def test_free_devices_skip_used_ones(
    tmp_path: Path, fake_runner: FakeRunner, mount_table, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lvmvol.mounts.read_mount_table", lambda pid="self": list(mount_table))
    sys_block = tmp_path / "block"
    make_block_device(sys_block, "sdx", "8:240")
    make_block_device(sys_block, "sdy", "8:250", holders=("dm-7",))
    make_block_device(sys_block, "sdz", "8:260", partitions=("sdz1",))
    make_block_device(sys_block, "sdw", "8:270", read_only=True)
    make_block_device(sys_block, "loop9", "7:9", sectors=0)
    make_block_device(sys_block, "dm-9", "254:9")
    # 254:4 is mounted in the unit tests' mount table.
    make_block_device(sys_block, "vdq", "254:4")
    make_block_device(sys_block, "loop1", "7:1")
    fake_runner.reply_report("pvs", "pvs_smokevg.json")
    ctx = Context(config=unit_config(), runner=fake_runner)

    found = free_block_devices(ctx, sys_block)

    assert found == [("/dev/sdx", "1.0 MiB")]
