"""The key options of the command line (--luks, --key-file, --passphrase, --passphrase-stdin), run in-process.

Each command runs with click's CliRunner and the fake runner, and
``FakeKernel`` (luks_fakes.py) fakes the dm-crypt mappings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lvmvol.cli import cli, common
from lvmvol.config import Config
from lvmvol.mounts import parse_mountinfo
from lvmvol.ops.context import Context

from .conftest import MOUNTINFO
from .conftest import unit_config
from .fakes import FakeRunner, Reply, lv_row, lvs_output
from .luks_fakes import FakeKernel, encrypted_row, write_key_file

PASSPHRASE = "correct horse battery staple"
MAPPING = "luks-smokevg-web"
SNAP1_MAPPING = "luks-smokevg-snap1"


@pytest.fixture
def kernel(fake_runner: FakeRunner, device_waits: list[str], monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    return FakeKernel(fake_runner, monkeypatch, parse_mountinfo(MOUNTINFO))


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Settings with key_dir and mount_root in tmp_path, so no test touches /etc or /var."""
    return unit_config(key_dir=str(tmp_path / "keys"), mount_root=str(tmp_path / "mnt"))


@pytest.fixture
def invoke(fake_runner: FakeRunner, kernel: FakeKernel, config: Config):
    """Return ``invoke(*args, input=None)``, which runs ``lvmvol ARGS`` against the smokevg report.

    The context with the fake runner is placed in the root context object,
    so lvmvol never builds a real runner. ``input`` is standard input.
    """
    fake_runner.reply_report("lvs", "lvs_smokevg.json")

    def run(*args: str, input: str | bytes | None = None) -> Result:
        context = Context(config=config, runner=fake_runner)
        return CliRunner().invoke(cli, list(args), obj={"context": context}, input=input)

    return run


@pytest.fixture
def invoke_dry_run(fake_runner: FakeRunner, kernel: FakeKernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Return ``invoke(*args, input=None)`` for ``lvmvol --dry-run ARGS``, which logs each command.

    lvmvol builds its own context here, from a config file with key_dir in
    tmp_path. ``lvmvol.cli.common.Runner`` is replaced, so the runner that
    lvmvol builds is the fake runner with lvmvol's dry-run flag.
    """
    fake_runner.reply_report("lvs", "lvs_smokevg.json")
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'key_dir = "{tmp_path / "keys"}"\nmount_root = "{tmp_path / "mnt"}"\n')

    def make_runner(timeout: float, dry_run: bool) -> FakeRunner:
        fake_runner.dry_run = dry_run
        return fake_runner

    monkeypatch.setattr(common, "Runner", make_runner)

    def run(*args: str, input: str | bytes | None = None) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config_file), "--dry-run", *args], input=input)

    return run


@pytest.fixture
def user_key(tmp_path: Path) -> str:
    return write_key_file(tmp_path / "web.key")


def serve_lvs(runner: FakeRunner, *rows: dict[str, str]) -> None:
    runner.reply("lvs", Reply(stdout=lvs_output(lv_row("pool"), *rows)))


def assert_one_error_line(result: Result, *fragments: str) -> None:
    """Check that stderr is one 'lvmvol: error:' line containing each fragment, without a traceback."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lvmvol: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output


def inputs_of(runner: FakeRunner) -> list[tuple[str, str | bytes]]:
    """Return the cryptsetup subcommand and standard input of each call that had input."""
    return [(call.argv[1], call.input) for call in runner.calls if call.input is not None]


def added_tags(argv: list[str]) -> list[str]:
    return [argv[index + 1] for index, arg in enumerate(argv) if arg == "--addtag"]


# volume create: key files


def test_create_key_file(invoke, fake_runner: FakeRunner, user_key: str) -> None:
    result = invoke("volume", "create", "web", "--size", "100M", "--luks", "--key-file", user_key)
    assert result.exit_code == 0, result.output
    assert result.stdout == "web\n"
    assert f"lvmvol.key={user_key}" in added_tags(fake_runner.calls_of("lvcreate")[0].argv)
    assert fake_runner.calls_of("cryptsetup")[0].argv[5:7] == ["--key-file", user_key]


def test_create_key_file_implies_luks(invoke, fake_runner: FakeRunner, user_key: str) -> None:
    result = invoke("volume", "create", "web", "--size", "100M", "--key-file", user_key)
    assert result.exit_code == 0, result.output
    assert "lvmvol.crypt=luks2" in added_tags(fake_runner.calls_of("lvcreate")[0].argv)


def test_create_relative_key_file(invoke, fake_runner: FakeRunner, user_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("volume", "create", "web", "--size", "100M", "--luks", "--key-file", "web.key")
    assert result.exit_code == 0, result.output
    assert f"lvmvol.key={user_key}" in added_tags(fake_runner.calls_of("lvcreate")[0].argv)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_create_unsafe_key_file(invoke, fake_runner: FakeRunner, tmp_path: Path, mode: int) -> None:
    key_file = write_key_file(tmp_path / "open.key", mode=mode)
    result = invoke("volume", "create", "web", "--size", "100M", "--luks", "--key-file", key_file)
    assert result.exit_code == 2
    assert_one_error_line(result, f"key file {key_file} is readable or writable by group or others", f"chmod 600 {key_file}")
    assert result.stdout == ""
    assert fake_runner.calls == []


def test_create_key_file_wrong_owner(invoke, fake_runner: FakeRunner, user_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    other = os.stat(user_key).st_uid + 1000
    monkeypatch.setattr(os, "geteuid", lambda: other)
    result = invoke("volume", "create", "web", "--size", "100M", "--luks", "--key-file", user_key)
    assert result.exit_code == 2
    assert_one_error_line(result, f"chown {other} {user_key}")
    assert fake_runner.calls == []


def test_create_key_file_missing(invoke, fake_runner: FakeRunner, tmp_path: Path) -> None:
    missing = tmp_path / "missing.key"
    result = invoke("volume", "create", "web", "--size", "100M", "--luks", "--key-file", str(missing))
    assert result.exit_code == 3
    assert_one_error_line(result, f"key file {missing} not found")
    assert fake_runner.calls == []


def test_create_key_file_empty(invoke, fake_runner: FakeRunner, tmp_path: Path) -> None:
    empty = write_key_file(tmp_path / "empty.key", data=b"")
    result = invoke("volume", "create", "web", "--size", "100M", "--luks", "--key-file", empty)
    assert result.exit_code == 2
    assert_one_error_line(result, f"key file {empty} is empty")
    assert fake_runner.calls == []


def test_create_empty_key_file_option(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "web", "--size", "100M", "--key-file", "")
    assert result.exit_code == 2
    assert fake_runner.executed_mutating() == []


def test_create_generated_key(invoke, fake_runner: FakeRunner, config: Config) -> None:
    result = invoke("volume", "create", "web", "--size", "100M", "--luks", "--json")
    assert result.exit_code == 0, result.output
    key_file = Path(config.key_dir) / f"{MAPPING}.key"
    assert json.loads(result.stdout)["key_source"] == str(key_file)
    assert len(key_file.read_bytes()) == 64


def test_create_discards_without_luks(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "web", "--size", "100M", "--allow-discards")
    assert result.exit_code == 2
    assert_one_error_line(result, "--allow-discards applies to encrypted volumes")
    assert fake_runner.calls == []


def test_create_allow_discards(invoke, fake_runner: FakeRunner, user_key: str) -> None:
    result = invoke("volume", "create", "web", "--size", "100M", "--key-file", user_key, "--allow-discards")
    assert result.exit_code == 0, result.output
    assert "lvmvol.discards=1" in added_tags(fake_runner.calls_of("lvcreate")[0].argv)


# volume create: passphrases


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        (["--passphrase-stdin"], "--key-file and --passphrase-stdin exclude each other"),
        (["--passphrase"], "--key-file and --passphrase exclude each other"),
        (["--passphrase", "--passphrase-stdin"], "--key-file and --passphrase and --passphrase-stdin exclude each other"),
    ],
)
def test_create_key_options_exclusive(invoke, fake_runner: FakeRunner, user_key: str, options: list[str], shown: str) -> None:
    result = invoke("volume", "create", "web", "--size", "100M", "--key-file", user_key, *options, input="pw\n")
    assert result.exit_code == 2
    assert_one_error_line(result, shown, "pass one of them")
    assert fake_runner.calls == []


def test_create_passphrase_options_exclusive(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "web", "--size", "100M", "--passphrase", "--passphrase-stdin", input="pw\n")
    assert result.exit_code == 2
    assert_one_error_line(result, "--passphrase and --passphrase-stdin exclude each other")
    assert fake_runner.calls == []


def test_create_passphrase_stdin(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "web", "--size", "100M", "--luks", "--passphrase-stdin", input="pw\n")
    assert result.exit_code == 0, result.output
    assert inputs_of(fake_runner) == [("luksFormat", b"pw"), ("open", b"pw")]
    assert fake_runner.calls_of("cryptsetup")[0].argv[5:7] == ["--key-file", "-"]


def test_create_passphrase_stdin_implies_luks(invoke, fake_runner: FakeRunner) -> None:
    result = invoke("volume", "create", "web", "--size", "100M", "--passphrase-stdin", input="pw\n")
    assert result.exit_code == 0, result.output
    assert "lvmvol.key=passphrase" in added_tags(fake_runner.calls_of("lvcreate")[0].argv)


@pytest.mark.parametrize(
    ("text", "passphrase"),
    [
        ("pw", b"pw"),
        ("pw\n\n", b"pw\n"),
        ("pw\r\n", b"pw\r"),
        (" pw \n", b" pw "),
        ("p\u00e4ss\n", "p\u00e4ss".encode("utf-8")),
    ],
)
def test_create_passphrase_stdin_bytes(invoke, fake_runner: FakeRunner, text: str, passphrase: bytes) -> None:
    # Only one trailing newline is dropped, and every other byte is part of the passphrase.
    result = invoke("volume", "create", "web", "--size", "100M", "--luks", "--passphrase-stdin", input=text)
    assert result.exit_code == 0, result.output
    assert fake_runner.calls_of("cryptsetup")[0].input == passphrase


def test_create_passphrase_not_printed(invoke, fake_runner: FakeRunner) -> None:
    result = invoke(
        "--verbose", "volume", "create", "web", "--size", "100M", "--passphrase-stdin", "--json", input=PASSPHRASE + "\n"
    )
    assert result.exit_code == 0, result.output
    assert "horse" not in result.output
    assert json.loads(result.stdout)["key_source"] == "passphrase"


def test_create_passphrase_not_in_argv(invoke, fake_runner: FakeRunner) -> None:
    invoke("volume", "create", "web", "--size", "100M", "--passphrase-stdin", input=PASSPHRASE + "\n")
    for call in fake_runner.calls:
        assert "horse" not in " ".join(call.argv)


def test_create_passphrase_dry_run_log(invoke_dry_run, fake_runner: FakeRunner) -> None:
    result = invoke_dry_run(
        "volume", "create", "web", "--size", "100M", "--passphrase-stdin", "--allow-overcommit", input=PASSPHRASE + "\n"
    )
    assert result.exit_code == 0, result.output
    assert (
        "lvmvol: would run: cryptsetup luksFormat --type luks2 --batch-mode --key-file - /dev/mapper/smokevg-web"
        in result.stderr.splitlines()
    )
    assert "horse" not in result.output
    assert fake_runner.executed_mutating() == []


def test_create_passphrase_failure_not_printed(invoke, fake_runner: FakeRunner) -> None:
    fake_runner.reply("cryptsetup", Reply(returncode=1, stderr="Cannot format device.\n"))
    result = invoke("volume", "create", "web", "--size", "100M", "--passphrase-stdin", input=PASSPHRASE + "\n")
    assert result.exit_code == 5
    assert_one_error_line(result, "cryptsetup failed with exit code 1: Cannot format device.")
    assert "horse" not in result.output


@pytest.mark.parametrize("text", ["", "\n"])
def test_create_empty_passphrase(invoke, fake_runner: FakeRunner, text: str) -> None:
    result = invoke("volume", "create", "web", "--size", "100M", "--luks", "--passphrase-stdin", input=text)
    assert result.exit_code == 2
    assert_one_error_line(result, "the passphrase is empty")
    assert fake_runner.calls == []


def test_create_passphrase_no_terminal(invoke, fake_runner: FakeRunner) -> None:
    # CliRunner's standard input is not a terminal, as in a script or a pipe.
    result = invoke("volume", "create", "web", "--size", "100M", "--luks", "--passphrase", input="pw\npw\n")
    assert result.exit_code == 2
    assert_one_error_line(result, "--passphrase needs a terminal", "use --passphrase-stdin in scripts")
    assert fake_runner.calls == []


# volume mount, umount, rm


def test_mount_passphrase_stdin(invoke, fake_runner: FakeRunner, tmp_path: Path) -> None:
    serve_lvs(fake_runner, encrypted_row("snap1", "passphrase"))
    result = invoke("volume", "mount", "snap1", "--passphrase-stdin", input="pw\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{tmp_path / 'mnt' / 'snap1'}\n"
    assert inputs_of(fake_runner) == [("open", b"pw")]


def test_mount_passphrase_volume_without_key(invoke, fake_runner: FakeRunner) -> None:
    serve_lvs(fake_runner, encrypted_row("snap1", "passphrase"))
    result = invoke("volume", "mount", "snap1")
    assert result.exit_code == 2
    assert_one_error_line(result, "volume smokevg/snap1 is encrypted with a passphrase", "--passphrase")
    assert fake_runner.executed_mutating() == []


def test_mount_unsafe_key_file(invoke, fake_runner: FakeRunner, user_key: str, tmp_path: Path) -> None:
    readable = write_key_file(tmp_path / "readable.key", mode=0o644)
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    result = invoke("volume", "mount", "snap1", "--key-file", readable)
    assert result.exit_code == 2
    assert_one_error_line(result, f"chmod 600 {readable}")
    assert fake_runner.calls == []


def test_mount_recorded_key_file(invoke, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    result = invoke("volume", "mount", "snap1")
    assert result.exit_code == 0, result.output
    assert fake_runner.calls_of("cryptsetup")[0].argv[5:7] == ["--key-file", user_key]
    assert list(kernel.mappings) == [SNAP1_MAPPING]


def test_umount_closes_mapping(invoke, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path) -> None:
    target = str(tmp_path / "mnt" / "snap1")
    kernel.mount_mapping(SNAP1_MAPPING, target)
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    result = invoke("volume", "umount", "snap1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["mapping_closed"] is True
    assert fake_runner.executed_mutating() == [["umount", target], ["cryptsetup", "close", SNAP1_MAPPING]]


def test_rm_erases_key_slots(invoke, fake_runner: FakeRunner, user_key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lvmvol.ops.removal.devices.holders", lambda device: [])
    monkeypatch.setattr("lvmvol.ops.removal.mounts_in_other_namespaces", lambda major, minor: [])
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    result = invoke("volume", "rm", "snap1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["key_slots_erased"] is True
    assert [argv[:2] for argv in fake_runner.executed_mutating()] == [["cryptsetup", "erase"], ["lvremove", "--yes"]]


# volume ls and show


def test_volume_ls_json_luks_fields(invoke, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str) -> None:
    kernel.open_mapping(SNAP1_MAPPING)
    serve_lvs(
        fake_runner,
        lv_row("data"),
        encrypted_row("snap1", user_key, discards=True),
        encrypted_row("vol1", "passphrase"),
    )
    result = invoke("volume", "ls", "--json")
    assert result.exit_code == 0, result.output
    document = {volume["name"]: volume for volume in json.loads(result.stdout)}

    assert document["data"]["encrypted"] is False
    assert document["data"]["key_source"] is None
    assert document["data"]["mapping"] is None
    assert document["data"]["allow_discards"] is None

    assert document["snap1"]["encrypted"] is True
    assert document["snap1"]["key_source"] == user_key
    assert document["snap1"]["mapping"] == SNAP1_MAPPING
    assert document["snap1"]["allow_discards"] is True

    assert document["vol1"]["encrypted"] is True
    assert document["vol1"]["key_source"] == "passphrase"
    assert document["vol1"]["mapping"] is None
    assert document["vol1"]["allow_discards"] is False


def test_volume_ls_json_luks_mountpoint(invoke, fake_runner: FakeRunner, kernel: FakeKernel, user_key: str, tmp_path: Path) -> None:
    # An encrypted volume's filesystem is mounted from its mapping, not from the LV.
    target = str(tmp_path / "mnt" / "snap1")
    kernel.mount_mapping(SNAP1_MAPPING, target)
    serve_lvs(fake_runner, encrypted_row("snap1", user_key))
    document = json.loads(invoke("volume", "ls", "--json").stdout)
    assert document[0]["mountpoint"] == target
    assert document[0]["mapping"] == SNAP1_MAPPING


def test_volume_show_json_luks(invoke, fake_runner: FakeRunner, user_key: str) -> None:
    serve_lvs(fake_runner, encrypted_row("vol1", user_key, discards=True))
    result = invoke("volume", "show", "vol1", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["encrypted"] is True
    assert document["key_source"] == user_key
    assert document["mapping"] is None
    assert document["allow_discards"] is True
