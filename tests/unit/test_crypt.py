"""cryptsetup argv and the key type, with a fake runner: lvmvol.crypt."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lvmvol import crypt
from lvmvol.crypt import Key
from lvmvol.errors import CommandError

from .fakes import FakeRunner, Reply

DEVICE = "/dev/mapper/smokevg-web"
MAPPING = "luks-smokevg-web"
KEY_PATH = "/etc/lvmvol/keys/web.key"
PASSPHRASE = b"correct horse battery staple"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the delays close_mapping sleeps for, without sleeping.

    Only the ``time`` name inside lvmvol.crypt is replaced, so nothing else
    loses its real clock.
    """
    recorded: list[float] = []
    monkeypatch.setattr(crypt, "time", SimpleNamespace(sleep=recorded.append))
    return recorded


def test_key_needs_path_or_passphrase() -> None:
    with pytest.raises(ValueError):
        Key()


def test_key_rejects_path_and_passphrase() -> None:
    with pytest.raises(ValueError):
        Key(path=KEY_PATH, passphrase=PASSPHRASE)


def test_key_source_path() -> None:
    assert Key(path=KEY_PATH).source == KEY_PATH


def test_key_source_passphrase() -> None:
    assert Key(passphrase=PASSPHRASE).source == "passphrase"


def test_key_repr_hides_passphrase() -> None:
    key = Key(passphrase=PASSPHRASE)
    assert repr(key) == "Key(source='passphrase')"
    assert str(key) == "Key(source='passphrase')"
    assert "horse" not in f"{key!r} {key!s} {[key]}"


def test_key_repr_path() -> None:
    assert repr(Key(path=KEY_PATH)) == f"Key(source='{KEY_PATH}')"


def test_key_arguments_path() -> None:
    key = Key(path=KEY_PATH)
    assert key.arguments() == ["--key-file", KEY_PATH]
    assert key.stdin() is None


def test_key_arguments_passphrase() -> None:
    key = Key(passphrase=PASSPHRASE)
    assert key.arguments() == ["--key-file", "-"]
    assert key.stdin() == PASSPHRASE


def test_luks_format_key_file(fake_runner: FakeRunner) -> None:
    crypt.luks_format(fake_runner, DEVICE, Key(path=KEY_PATH))
    call = fake_runner.calls[0]
    assert call.argv == [
        "cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--key-file", KEY_PATH, DEVICE,
    ]
    assert call.mutating is True
    assert call.input is None


def test_luks_format_generated_key(fake_runner: FakeRunner) -> None:
    crypt.luks_format(fake_runner, DEVICE, Key(path=KEY_PATH, generated=True))
    assert fake_runner.calls[0].argv == [
        "cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--key-file", KEY_PATH,
        "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", DEVICE,
    ]


def test_luks_format_passphrase(fake_runner: FakeRunner) -> None:
    crypt.luks_format(fake_runner, DEVICE, Key(passphrase=PASSPHRASE))
    call = fake_runner.calls[0]
    assert call.argv == [
        "cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", "--key-file", "-", DEVICE,
    ]
    assert call.input == PASSPHRASE


def test_luks_format_passphrase_default_pbkdf(fake_runner: FakeRunner) -> None:
    # A passphrase can be guessed, so it keeps cryptsetup's default key stretching.
    crypt.luks_format(fake_runner, DEVICE, Key(passphrase=PASSPHRASE))
    argv = fake_runner.calls[0].argv
    assert "--pbkdf" not in argv
    assert "--pbkdf-force-iterations" not in argv


def test_luks_format_failure(fake_runner: FakeRunner) -> None:
    fake_runner.reply("cryptsetup", Reply(returncode=1, stderr="Device /dev/mapper/smokevg-web is in use.\n"))
    with pytest.raises(CommandError) as raised:
        crypt.luks_format(fake_runner, DEVICE, Key(passphrase=PASSPHRASE))
    assert "cryptsetup failed with exit code 1" in str(raised.value)
    assert "horse" not in str(raised.value)


def test_open_mapping_argv(fake_runner: FakeRunner) -> None:
    crypt.open_mapping(fake_runner, DEVICE, MAPPING, Key(path=KEY_PATH))
    call = fake_runner.calls[0]
    assert call.argv == [
        "cryptsetup", "open", "--type", "luks2", "--batch-mode", "--key-file", KEY_PATH, DEVICE, MAPPING,
    ]
    assert call.mutating is True
    assert call.input is None


def test_open_mapping_passphrase(fake_runner: FakeRunner) -> None:
    crypt.open_mapping(fake_runner, DEVICE, MAPPING, Key(passphrase=PASSPHRASE))
    call = fake_runner.calls[0]
    assert call.argv[5:7] == ["--key-file", "-"]
    assert call.input == PASSPHRASE


def test_open_mapping_generated_key_no_pbkdf(fake_runner: FakeRunner) -> None:
    # The PBKDF options apply to luksFormat only, because open reads them from the key slot.
    crypt.open_mapping(fake_runner, DEVICE, MAPPING, Key(path=KEY_PATH, generated=True))
    assert "--pbkdf" not in fake_runner.calls[0].argv


def test_open_mapping_allow_discards(fake_runner: FakeRunner) -> None:
    crypt.open_mapping(fake_runner, DEVICE, MAPPING, Key(path=KEY_PATH), allow_discards=True)
    assert fake_runner.calls[0].argv == [
        "cryptsetup", "open", "--type", "luks2", "--batch-mode", "--key-file", KEY_PATH,
        "--allow-discards", DEVICE, MAPPING,
    ]


def test_open_mapping_read_only(fake_runner: FakeRunner) -> None:
    crypt.open_mapping(fake_runner, DEVICE, MAPPING, Key(path=KEY_PATH), read_only=True)
    assert fake_runner.calls[0].argv == [
        "cryptsetup", "open", "--type", "luks2", "--batch-mode", "--key-file", KEY_PATH,
        "--readonly", DEVICE, MAPPING,
    ]


def test_open_mapping_discards_and_read_only(fake_runner: FakeRunner) -> None:
    crypt.open_mapping(fake_runner, DEVICE, MAPPING, Key(path=KEY_PATH), allow_discards=True, read_only=True)
    argv = fake_runner.calls[0].argv
    assert "--allow-discards" in argv
    assert "--readonly" in argv
    assert argv[-2:] == [DEVICE, MAPPING]


def test_open_mapping_default_flags(fake_runner: FakeRunner) -> None:
    crypt.open_mapping(fake_runner, DEVICE, MAPPING, Key(path=KEY_PATH))
    argv = fake_runner.calls[0].argv
    assert "--allow-discards" not in argv
    assert "--readonly" not in argv


def test_close_mapping(fake_runner: FakeRunner, sleeps: list[float]) -> None:
    crypt.close_mapping(fake_runner, MAPPING)
    assert [call.argv for call in fake_runner.calls] == [["cryptsetup", "close", MAPPING]]
    assert fake_runner.calls[0].mutating is True
    assert sleeps == []


def test_close_mapping_busy_then_closed(fake_runner: FakeRunner, sleeps: list[float]) -> None:
    fake_runner.reply("cryptsetup", Reply(returncode=5), Reply(returncode=5), Reply(returncode=0))
    crypt.close_mapping(fake_runner, MAPPING)
    assert len(fake_runner.calls) == 3
    assert sleeps == [0.2, 0.4]


def test_close_mapping_busy_attempts_bounded(fake_runner: FakeRunner, sleeps: list[float]) -> None:
    fake_runner.reply("cryptsetup", Reply(returncode=5, stderr="Device luks-smokevg-web is still in use.\n"))
    with pytest.raises(CommandError) as raised:
        crypt.close_mapping(fake_runner, MAPPING)
    assert raised.value.returncode == 5
    assert "Device luks-smokevg-web is still in use." in str(raised.value)
    assert len(fake_runner.calls) == crypt.CLOSE_ATTEMPTS
    # No sleep after the last attempt: it re-raises at once.
    assert sleeps == [0.2, 0.4, 0.8, 1.6, 3.2]


def test_close_mapping_other_error_not_retried(fake_runner: FakeRunner, sleeps: list[float]) -> None:
    fake_runner.reply("cryptsetup", Reply(returncode=4, stderr="Device luks-smokevg-web is not active.\n"))
    with pytest.raises(CommandError) as raised:
        crypt.close_mapping(fake_runner, MAPPING)
    assert raised.value.returncode == 4
    assert len(fake_runner.calls) == 1
    assert sleeps == []


def test_close_mapping_dry_run(sleeps: list[float]) -> None:
    runner = FakeRunner(dry_run=True)
    crypt.close_mapping(runner, MAPPING)
    assert runner.executed_mutating() == []
    assert [call.argv for call in runner.calls if call.dry_run] == [["cryptsetup", "close", MAPPING]]


def test_erase_argv(fake_runner: FakeRunner) -> None:
    crypt.erase(fake_runner, DEVICE)
    call = fake_runner.calls[0]
    assert call.argv == ["cryptsetup", "erase", "--batch-mode", DEVICE]
    assert call.mutating is True


def test_is_luks_true(fake_runner: FakeRunner) -> None:
    assert crypt.is_luks(fake_runner, DEVICE) is True
    call = fake_runner.calls[0]
    assert call.argv == ["cryptsetup", "isLuks", DEVICE]
    assert call.mutating is False


def test_is_luks_false(fake_runner: FakeRunner) -> None:
    fake_runner.reply("cryptsetup", Reply(returncode=1))
    assert crypt.is_luks(fake_runner, DEVICE) is False


def test_is_luks_error(fake_runner: FakeRunner) -> None:
    # Exit code 4 means the device is missing or unreadable, so is_luks raises instead of returning False.
    fake_runner.reply("cryptsetup", Reply(returncode=4, stderr="Device /dev/mapper/smokevg-web does not exist.\n"))
    with pytest.raises(CommandError):
        crypt.is_luks(fake_runner, DEVICE)


def test_is_luks_runs_in_dry_run() -> None:
    runner = FakeRunner(dry_run=True)
    runner.reply("cryptsetup", Reply(returncode=1))
    assert crypt.is_luks(runner, DEVICE) is False
    assert runner.calls[0].dry_run is False


@pytest.mark.parametrize(("returncode", "expected"), [(0, True), (1, False), (2, False)])
def test_test_key_exit_codes(fake_runner: FakeRunner, returncode: int, expected: bool) -> None:
    fake_runner.reply("cryptsetup", Reply(returncode=returncode))
    assert crypt.test_key(fake_runner, DEVICE, Key(passphrase=PASSPHRASE)) is expected


def test_test_key_argv(fake_runner: FakeRunner) -> None:
    crypt.test_key(fake_runner, DEVICE, Key(passphrase=PASSPHRASE))
    call = fake_runner.calls[0]
    assert call.argv == ["cryptsetup", "open", "--test-passphrase", "--batch-mode", "--key-file", "-", DEVICE]
    assert call.mutating is False
    assert call.input == PASSPHRASE
