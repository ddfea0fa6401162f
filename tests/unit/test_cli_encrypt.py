"""The encrypt and rekey commands' options, key reading and progress bar, with the operations stubbed."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lvmvol.cli import cli, progress
from lvmvol.ops import encrypt as encrypt_ops
from lvmvol.ops import rekey as rekey_ops
from lvmvol.config import Config
from lvmvol.crypt import ReencryptProgress
from lvmvol.ops.context import Context, Outcome

from .conftest import unit_config
from .fakes import FakeRunner


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Replace the encrypt and rekey operations; record what the CLI passes to them."""
    recorded: list[tuple] = []

    def encrypt_volume(ctx, name, key, allow_discards, on_progress):
        recorded.append(("encrypt", name, key, allow_discards, on_progress))
        return Outcome(name, True, {"key_source": key.source if key else "/etc/lvmvol/keys/generated.key"})

    def rekey_volume(ctx, name, new_key, current_key):
        recorded.append(("rekey", name, new_key, current_key))
        return Outcome(name, True, {"key_source": new_key.source})

    monkeypatch.setattr(encrypt_ops, "encrypt_volume", encrypt_volume)
    monkeypatch.setattr(rekey_ops, "rekey_volume", rekey_volume)
    return recorded


@pytest.fixture
def invoke(fake_runner: FakeRunner):
    def run(*args: str, input: bytes | str | None = None) -> Result:
        context = Context(config=unit_config(), runner=fake_runner)
        return CliRunner().invoke(cli, list(args), obj={"context": context}, input=input)

    return run


@pytest.fixture
def key_path(tmp_path: Path) -> str:
    path = tmp_path / "volume.key"
    path.write_bytes(os.urandom(64))
    path.chmod(0o600)
    return str(path)


def one_error_line(result: Result) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lvmvol: error: ")
    return lines[0]


# volume encrypt


def test_encrypt_without_key(invoke, calls: list) -> None:
    result = invoke("volume", "encrypt", "web")
    assert result.exit_code == 0, result.output
    assert calls == [("encrypt", "web", None, False, None)]
    assert result.stdout == "web\n"
    assert "lvmvol: volume web: changed" in result.stderr


def test_encrypt_key_file(invoke, calls: list, key_path: str) -> None:
    result = invoke("volume", "encrypt", "web", "--key-file", key_path, "--allow-discards", "--json")
    assert result.exit_code == 0, result.output
    _, _, key, allow_discards, _ = calls[0]
    assert key.path == key_path
    assert allow_discards is True
    assert json.loads(result.stdout) == {"name": "web", "changed": True, "key_source": key_path}


def test_encrypt_passphrase_stdin(invoke, calls: list) -> None:
    result = invoke("volume", "encrypt", "web", "--passphrase-stdin", input=b"correct horse\n")
    assert result.exit_code == 0, result.output
    assert calls[0][2].passphrase == b"correct horse"


def test_encrypt_key_options_exclusive(invoke, calls: list, key_path: str) -> None:
    result = invoke("volume", "encrypt", "web", "--key-file", key_path, "--passphrase-stdin", input=b"x")
    assert result.exit_code == 2
    assert "--key-file and --passphrase-stdin exclude each other" in one_error_line(result)
    assert calls == []


def test_encrypt_unsafe_key_file(invoke, calls: list, key_path: str) -> None:
    os.chmod(key_path, 0o644)
    result = invoke("volume", "encrypt", "web", "--key-file", key_path)
    assert result.exit_code == 2
    assert "chmod 600" in one_error_line(result)
    assert calls == []


def test_encrypt_interrupt_note(invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(encrypt_ops, "encrypt_volume", interrupted)
    result = invoke("volume", "encrypt", "web")
    assert result.exit_code == 130
    assert "run 'lvmvol volume encrypt web' again to resume" in result.stderr
    assert "lvmvol: interrupted" in result.stderr


# volume rekey


def test_rekey_new_key_file(invoke, calls: list, key_path: str) -> None:
    result = invoke("volume", "rekey", "web", "--new-key-file", key_path)
    assert result.exit_code == 0, result.output
    _, name, new_key, current_key = calls[0]
    assert (name, new_key.path, current_key) == ("web", key_path, None)


def test_rekey_current_key_file(invoke, calls: list, key_path: str, tmp_path: Path) -> None:
    current = tmp_path / "current.key"
    current.write_bytes(b"c" * 64)
    current.chmod(0o600)
    result = invoke("volume", "rekey", "web", "--new-key-file", key_path, "--key-file", str(current))
    assert result.exit_code == 0, result.output
    assert calls[0][3].path == str(current)


def test_rekey_new_passphrase_stdin(invoke, calls: list) -> None:
    result = invoke("volume", "rekey", "web", "--new-passphrase-stdin", input=b"new words\n")
    assert result.exit_code == 0, result.output
    assert calls[0][2].passphrase == b"new words"
    assert calls[0][3] is None


def test_rekey_current_passphrase_stdin(invoke, calls: list, key_path: str) -> None:
    result = invoke("volume", "rekey", "web", "--new-key-file", key_path, "--passphrase-stdin", input=b"old words\n")
    assert result.exit_code == 0, result.output
    assert calls[0][3].passphrase == b"old words"


def test_rekey_both_passphrases_stdin(invoke, calls: list) -> None:
    result = invoke(
        "volume", "rekey", "web", "--passphrase-stdin", "--new-passphrase-stdin", input=b"old words\nnew words\n"
    )
    assert result.exit_code == 0, result.output
    _, _, new_key, current_key = calls[0]
    assert current_key.passphrase == b"old words"
    assert new_key.passphrase == b"new words"


def test_rekey_both_passphrases_one_line(invoke, calls: list) -> None:
    result = invoke("volume", "rekey", "web", "--passphrase-stdin", "--new-passphrase-stdin", input=b"only one")
    assert result.exit_code == 2
    assert "first line and the new one on the second" in one_error_line(result)
    assert calls == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ((), "the new key is missing"),
        (("--new-passphrase-stdin", "--new-passphrase"), "--new-passphrase and --new-passphrase-stdin exclude each other"),
        (("--new-passphrase-stdin", "--passphrase", "--passphrase-stdin"), "--passphrase and --passphrase-stdin exclude each other"),
    ],
)
def test_rekey_invalid_options(invoke, calls: list, options: tuple, message: str) -> None:
    result = invoke("volume", "rekey", "web", *options, input=b"x\ny\n")
    assert result.exit_code == 2
    assert message in one_error_line(result)
    assert calls == []


def test_rekey_empty_new_passphrase(invoke, calls: list) -> None:
    result = invoke("volume", "rekey", "web", "--new-passphrase-stdin", input=b"\n")
    assert result.exit_code == 2
    assert "the passphrase is empty" in one_error_line(result)


def test_rekey_new_passphrase_needs_terminal(invoke, calls: list) -> None:
    result = invoke("volume", "rekey", "web", "--new-passphrase", input=b"x\n")
    assert result.exit_code == 2
    assert "--new-passphrase needs a terminal" in one_error_line(result)


# Progress bar


def test_progress_bar_off_without_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with progress.progress_bar("encrypting web") as on_progress:
        assert on_progress is None


class TerminalOutput(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    output = TerminalOutput()
    monkeypatch.setattr("sys.stderr", output)
    monkeypatch.setenv("COLUMNS", "120")
    with progress.progress_bar("encrypting web") as on_progress:
        assert on_progress is not None
        on_progress(ReencryptProgress(done_bytes=64 * 2**20, total_bytes=256 * 2**20, speed=0, eta_seconds=0))
        on_progress(ReencryptProgress(done_bytes=256 * 2**20, total_bytes=256 * 2**20, speed=0, eta_seconds=0))
    text = output.getvalue()
    assert "encrypting web" in text
    assert "100%" in text
    assert "256.0/256.0 MiB" in text
