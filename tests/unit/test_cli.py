"""The command line, run in-process with click's CliRunner and a fake runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lvmvol.cli import cli, common
from lvmvol.config import Config
from lvmvol.ops.context import Context

from .conftest import unit_config
from .fakes import FakeRunner, Reply, lv_row, lvs_output

MiB = 1024 * 1024
LONG_NAME = "n" * 200

VOLUME_KEYS = {"name", "vg", "pool", "size_bytes", "encrypted", "origin", "active", "mountpoint"}
POOL_KEYS = {"name", "vg", "size_bytes", "data_percent", "metadata_percent"}


@pytest.fixture
def invoke(fake_runner: FakeRunner, mount_table, device_waits, tmp_path):
    """Return ``invoke(*args)``, which runs ``lvmvol ARGS`` against the recorded smokevg report.

    The operation context with the fake runner is placed in the root
    context object, so lvmvol never builds a real runner.
    """
    fake_runner.reply_report("lvs", "lvs_smokevg.json")

    def run(*args: str) -> Result:
        config = unit_config(loop_file_list=str(tmp_path / "etc" / "loop-files"))
        context = Context(config=config, runner=fake_runner)
        return CliRunner().invoke(cli, list(args), obj={"context": context})

    return run


@pytest.fixture
def invoke_with_options(fake_runner: FakeRunner, mount_table, device_waits, monkeypatch: pytest.MonkeyPatch):
    """Return ``invoke(*args)`` that lets lvmvol build its own context from --config and --dry-run.

    ``lvmvol.cli.common.Runner`` is replaced, so the runner lvmvol builds is
    the fake runner with the timeout and dry-run flag that lvmvol set.
    """
    fake_runner.reply_report("lvs", "lvs_smokevg.json")

    def make_runner(timeout: float, dry_run: bool) -> FakeRunner:
        fake_runner.timeout = timeout
        fake_runner.dry_run = dry_run
        return fake_runner

    monkeypatch.setattr(common, "Runner", make_runner)

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args))

    return run


def assert_one_error_line(result: Result, *fragments: str) -> None:
    """Check that stderr is one 'lvmvol: error:' line containing each fragment, without a traceback."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lvmvol: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("snapshot-2024", "'snapshot-2024'"),
        ("data_tmeta", "'data_tmeta'"),
        ("a b", "'a b'"),
        ("-x", "'-x'"),
        (LONG_NAME, f"'{LONG_NAME[:20]}'..."),
        ("data\n", "'data\\n'"),
    ],
)
def test_create_invalid_name(invoke, fake_runner: FakeRunner, name: str, shown: str) -> None:
    # "--" lets a name that starts with "-" reach lvmvol instead of click's option parser.
    result = invoke("volume", "create", "--size", "10M", "--", name)
    assert result.exit_code == 2
    assert_one_error_line(result, f"invalid volume name {shown}")
    assert result.stdout == ""
    assert fake_runner.executed_mutating() == []


def test_create_name_too_long_for_vg(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "d" * 120, "--size", "10M")
    assert result.exit_code == 2
    assert_one_error_line(result, "ddddddddddddddddddd", "in volume group 'smokevg'")
    assert fake_runner.executed_mutating() == []


def test_create_option_like_name(invoke, fake_runner: FakeRunner) -> None:
    # Without "--", click reads -x as an unknown option: a usage error, exit code 2.
    result = invoke("volume", "create", "-x", "--size", "10M")
    assert result.exit_code == 2
    assert_one_error_line(result, "No such option '-x'", "volume create --help")
    assert fake_runner.calls == []


@pytest.mark.parametrize(
    ("size", "fragment"),
    [
        ("10", "size '10' for --size has no unit"),
        ("10X", "unknown unit 'X' in size '10X' for --size"),
        ("0M", "size '0M' for --size must be greater than zero"),
        ("-5M", "invalid size '-5M' for --size"),
        ("1.5B", "size '1.5B' for --size is not a whole number of bytes"),
    ],
)
def test_create_invalid_size(invoke, fake_runner: FakeRunner, size: str, fragment: str) -> None:
    result = invoke("volume", "create", "web", "--size", size)
    assert result.exit_code == 2
    assert_one_error_line(result, fragment)
    assert fake_runner.calls == []


def test_create_size_hint(invoke) -> None:
    result = invoke("volume", "create", "web", "--size", "10")
    assert "use a unit: 100M or 100MiB (binary), 100MB (decimal), 4096B (bytes)" in result.stderr


def test_snapshot_invalid_name(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("snapshot", "vol1", "data_tmeta")
    assert result.exit_code == 2
    assert_one_error_line(result, "invalid snapshot name 'data_tmeta'")
    assert fake_runner.executed_mutating() == []


def test_pool_init_invalid_name(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("pool", "init", "/dev/sdz", "--name", "pool_tmeta")
    assert result.exit_code == 2
    assert_one_error_line(result, "invalid pool name 'pool_tmeta'")
    assert fake_runner.calls == []


def test_pool_init_invalid_vg(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("pool", "init", "/dev/sdz", "--vg", "my vg")
    assert result.exit_code == 2
    assert_one_error_line(result, "invalid volume group name 'my vg'")
    assert fake_runner.calls == []


def test_dry_run_create(invoke_with_options, fake_runner: FakeRunner, device_waits: list[str]) -> None:
    # --allow-overcommit: the recorded pool is committed past the default ratio.
    result = invoke_with_options("--dry-run", "volume", "create", "web", "--size", "100M", "--allow-overcommit")
    assert result.exit_code == 0, result.output
    assert result.stdout == "web\n"
    would_run = [line for line in result.stderr.splitlines() if line.startswith("lvmvol: would run: ")]
    assert len(would_run) == 3
    assert would_run[0].startswith("lvmvol: would run: lvcreate --type thin --virtualsize 104857600b")
    assert would_run[1] == "lvmvol: would run: mkfs.ext4 -q -F -E nodiscard /dev/mapper/smokevg-web"
    assert would_run[2] == "lvmvol: would run: lvchange --deltag lvmvol.incomplete smokevg/web"
    assert fake_runner.executed_mutating() == []
    assert fake_runner.dry_run is True
    assert device_waits == []


def test_dry_run_reads_inventory(invoke_with_options, fake_runner: FakeRunner) -> None:
    invoke_with_options("--dry-run", "volume", "create", "web", "--size", "100M")
    assert [call.argv[0] for call in fake_runner.calls if not call.mutating] == ["lvs"]


def test_runner_timeout_from_config(invoke_with_options, fake_runner: FakeRunner, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("command_timeout = 7\n")
    result = invoke_with_options("--config", str(config), "volume", "ls", "--json")
    assert result.exit_code == 0, result.output
    assert fake_runner.timeout == 7.0
    assert fake_runner.dry_run is False


def test_config_env_var(invoke_with_options, fake_runner: FakeRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text("command_timeout = 9\n")
    monkeypatch.setenv("LVMVOL_CONFIG", str(config))
    result = invoke_with_options("volume", "ls", "--json")
    assert result.exit_code == 0, result.output
    assert fake_runner.timeout == 9.0


def test_config_missing(invoke_with_options, fake_runner: FakeRunner, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    result = invoke_with_options("--config", str(missing), "volume", "ls")
    assert result.exit_code == 2
    assert_one_error_line(result, f"configuration file {missing} not found")
    assert fake_runner.calls == []


def test_config_invalid(invoke_with_options, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('filesystem = "btrfs"\n')
    result = invoke_with_options("--config", str(config), "volume", "ls")
    assert result.exit_code == 2
    assert_one_error_line(result, "invalid filesystem 'btrfs'")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--file", "/srv/pool.img"], "--file needs --file-size"),
        (["--file-size", "1G"], "--file-size needs --file PATH"),
        (["/dev/sdz", "--file", "/srv/pool.img", "--file-size", "1G"], "pass either DEVICE... or --file, not both"),
        ([], "no device given"),
        (["--file", "/srv/pool.img", "--file-size", "10"], "size '10' for --file-size has no unit"),
        (["--file", "/srv/pool.img", "--file-size", "1X"], "unknown unit 'X' in size '1X' for --file-size"),
        (["/dev/sdz", "--size", "0%"], "percentage '0%' for --size must be greater than 0"),
        (["/dev/sdz", "--size", "150%"], "percentage '150%' for --size must be greater than 0 and at most 100"),
        (["/dev/sdz", "--size", "50"], "size '50' for --size has no unit"),
    ],
)
def test_pool_init_arguments(invoke, fake_runner: FakeRunner, args: list[str], fragment: str) -> None:
    result = invoke("pool", "init", *args)
    assert result.exit_code == 2
    assert_one_error_line(result, fragment)
    assert fake_runner.calls == []


def test_pool_init_file_too_small(invoke, fake_runner: FakeRunner, tmp_path: Path) -> None:
    backing = tmp_path / "pool.img"
    result = invoke("pool", "init", "--file", str(backing), "--file-size", "10M")
    assert result.exit_code == 2
    assert_one_error_line(result, "--file-size 10.0 MiB is too small for a thin pool", "at least 64.0 MiB")
    assert fake_runner.calls == []
    assert not backing.exists()


def test_create_same_spec_unchanged(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "vol1", "--size", "300M")
    assert result.exit_code == 0, result.output
    assert result.stdout == "vol1\n"
    assert result.stderr == "lvmvol: volume vol1: unchanged\n"
    assert fake_runner.executed_mutating() == []


def test_ls_json_piped_is_one_line(invoke) -> None:
    result = invoke("volume", "ls", "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 1
    assert len(json.loads(result.stdout)) == 3


def test_ls_json_terminal_is_indented(invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "is_terminal", lambda: True)
    result = invoke("volume", "ls", "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[\n  {\n")
    assert len(json.loads(result.stdout)) == 3


def test_create_same_spec_json(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "vol1", "--size", "300M", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["name"] == "vol1"
    assert document["changed"] is False
    assert document["size_bytes"] == 300 * MiB
    assert result.stderr == ""


def test_create_other_size_conflict(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "vol1", "--size", "1G")
    assert result.exit_code == 4
    assert_one_error_line(result, "volume smokevg/vol1 exists with another specification", "size 300.0 MiB, not 1.0 GiB")
    assert result.stdout == ""
    assert fake_runner.executed_mutating() == []


def test_create_new_volume(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "web", "--size", "100M")
    assert result.exit_code == 0, result.output
    assert result.stdout == "web\n"
    assert result.stderr == "lvmvol: volume web: changed\n"
    assert [argv[0] for argv in fake_runner.executed_mutating()] == ["lvcreate", "mkfs.ext4", "lvchange"]


def test_create_new_volume_json(invoke) -> None:
    result = invoke("volume", "create", "web", "--size", "10M", "--fs", "none", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["changed"] is True
    assert document["size_bytes"] == 12 * MiB
    assert document["filesystem"] == "none"
    assert len(document["notes"]) == 1
    assert result.stderr.startswith("lvmvol: note: size rounded up")


def test_create_rounding_note(invoke) -> None:
    result = invoke("volume", "create", "web", "--size", "10M")
    assert result.stderr.splitlines() == [
        "lvmvol: note: size rounded up from 10.0 MiB (10485760 bytes) to 12.0 MiB (12582912 bytes), "
        "a whole number of extents",
        "lvmvol: volume web: changed",
    ]


def test_create_invalid_fs_choice(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "web", "--size", "10M", "--fs", "btrfs")
    assert result.exit_code == 2
    assert_one_error_line(result, "Invalid value for '--fs': 'btrfs'")
    assert fake_runner.calls == []


def test_exit_code_not_found(invoke) -> None:
    result = invoke("volume", "show", "nosuch")
    assert result.exit_code == 3
    assert_one_error_line(result, "volume 'nosuch' not found")


def test_exit_code_pool_not_found(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "web", "--size", "10M", "--pool", "nosuch")
    assert result.exit_code == 3
    assert_one_error_line(result, "pool 'nosuch' not found")
    assert fake_runner.executed_mutating() == []


def test_exit_code_conflict_unmanaged(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "scratch", "--size", "64M")
    assert result.exit_code == 4
    assert_one_error_line(result, "smokevg/scratch exists and is not managed by lvmvol")


def test_exit_code_command_failed(invoke, fake_runner: FakeRunner) -> None:
    fake_runner.reply(
        "lvcreate",
        Reply(returncode=5, stderr='  Volume group "smokevg" has insufficient free space (10 extents): 25 required.\n'),
    )
    result = invoke("volume", "create", "web", "--size", "100M")
    assert result.exit_code == 5
    assert_one_error_line(
        result,
        "lvcreate failed with exit code 5: Volume group \"smokevg\" has insufficient free space",
    )


def test_exit_code_ambiguous_pool(invoke, fake_runner: FakeRunner) -> None:
    fake_runner.reply_report("lvs", "lvs_two_vgs.json")
    result = invoke("volume", "create", "web", "--size", "10M")
    assert result.exit_code == 2
    assert_one_error_line(result, "several pools exist (fastvg/pool, slowvg/archive, slowvg/pool)")
    assert fake_runner.executed_mutating() == []


def test_debug_raises(invoke) -> None:
    result = invoke("--debug", "volume", "show", "nosuch")
    assert result.exit_code == 1
    assert type(result.exception).__name__ == "NotFound"


def test_volume_ls_json(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "ls", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [volume["name"] for volume in document] == ["data", "snap1", "vol1"]
    for volume in document:
        assert VOLUME_KEYS <= set(volume)
        assert isinstance(volume["size_bytes"], int)
        assert isinstance(volume["encrypted"], bool)
        assert isinstance(volume["active"], bool)
    assert fake_runner.executed_mutating() == []


def test_volume_ls_json_values(invoke) -> None:
    document = {volume["name"]: volume for volume in json.loads(invoke("volume", "ls", "--json").stdout)}
    assert document["data"]["vg"] == "smokevg"
    assert document["data"]["pool"] == "pool"
    assert document["data"]["size_bytes"] == 100 * MiB
    assert document["data"]["encrypted"] is False
    assert document["data"]["origin"] is None
    assert document["data"]["active"] is True
    assert document["data"]["mountpoint"] == "/var/lib/lvmvol/data set"
    assert document["snap1"]["origin"] == "vol1"
    assert document["vol1"]["active"] is False
    assert document["vol1"]["mountpoint"] is None


def test_volume_ls_json_empty(invoke, fake_runner: FakeRunner) -> None:
    fake_runner.reply("lvs", Reply(stdout=""))
    result = invoke("volume", "ls", "--json")
    assert json.loads(result.stdout) == []


def test_pool_ls_json(invoke) -> None:
    result = invoke("pool", "ls", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert len(document) == 1
    pool = document[0]
    assert POOL_KEYS <= set(pool)
    assert pool["name"] == "pool"
    assert pool["vg"] == "smokevg"
    assert pool["size_bytes"] == 200 * MiB
    assert pool["data_percent"] == 12.5
    assert pool["metadata_percent"] == 10.64


def test_volume_show_json(invoke) -> None:
    result = invoke("volume", "show", "vol1", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert VOLUME_KEYS <= set(document)
    assert document["snapshots"] == ["snap1"]


def test_tree_json(invoke) -> None:
    result = invoke("tree", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [pool["name"] for pool in document] == ["pool"]
    assert [child["name"] for child in document[0]["children"]] == ["data", "snap1", "vol1"]


def test_volume_ls_table(invoke) -> None:
    result = invoke("volume", "ls")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "VG", "POOL", "SIZE", "FS", "CRYPT", "ORIGIN", "CREATED", "STATE", "MOUNTPOINT"]
    assert any(line.split()[:2] == ["vol1", "smokevg"] for line in lines)


def test_volume_ls_table_piped_not_cut(invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    result = invoke("volume", "ls")
    assert "/var/lib/lvmvol/data set" in result.stdout


def test_pool_ls_table(invoke) -> None:
    result = invoke("pool", "ls")
    assert result.exit_code == 0, result.output
    assert "12.5" in result.stdout
    assert "200.0 MiB" in result.stdout


def test_version(invoke) -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("lvmvol, version ")


def test_snapshot_read_only_option(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("snapshot", "vol1", "backup", "--read-only", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["read_only"] is True
    assert "--permission" in fake_runner.calls_of("lvcreate")[0].argv


def test_volume_snapshot_alias_options(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "snapshot", "vol1", "--read-only", "--allow-overcommit")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("vol1-")
    assert len(result.stdout.splitlines()) == 1


def test_create_overcommit_refused_one_line(fake_runner: FakeRunner, mount_table, device_waits) -> None:
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    context = Context(config=Config(), runner=fake_runner)
    result = CliRunner().invoke(cli, ["volume", "create", "web", "--size", "1G"], obj={"context": context})
    assert result.exit_code == 4
    assert_one_error_line(result, "cannot add a 1.0 GiB volume to thin pool smokevg/pool", "--allow-overcommit")
    assert fake_runner.executed_mutating() == []


def test_pool_ls_flags_full_pool(fake_runner: FakeRunner, mount_table) -> None:
    pool = lv_row("pool")
    pool["data_percent"] = "91.00"
    fake_runner.reply("lvs", Reply(stdout=lvs_output(pool, lv_row("vol1"))))
    context = Context(config=unit_config(), runner=fake_runner)

    table = CliRunner().invoke(cli, ["pool", "ls"], obj={"context": context})
    document = json.loads(CliRunner().invoke(cli, ["pool", "ls", "--json"], obj={"context": context}).stdout)
    volumes = CliRunner().invoke(cli, ["volume", "ls"], obj={"context": context})
    tree = CliRunner().invoke(cli, ["tree"], obj={"context": context})

    assert table.stdout.splitlines()[0].split()[-1] == "WARNING"
    assert "data 91.0% >= 80%" in table.stdout
    assert document[0]["past_threshold"] is True
    assert "pool (full)" in volumes.stdout
    assert "(full) data 91.0% >= 80%" in tree.stdout
