"""Key file checks and generated key files, on files in tmp_path: lvmvol.keys."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lvmvol import keys
from lvmvol.errors import Conflict, InvalidInput, NotFound
from lvmvol.keys import generate_key_file, validate_key_file

from .luks_fakes import write_key_file

MAPPING = "luks-smokevg-web"


def mode_of(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_validate_good_file(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "web.key")
    assert validate_key_file(path) == path


@pytest.mark.parametrize("mode", [0o400, 0o600, 0o700])
def test_validate_private_modes(tmp_path: Path, mode: int) -> None:
    path = write_key_file(tmp_path / "web.key", mode=mode)
    assert validate_key_file(path) == path


def test_validate_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_key_file(tmp_path / "web.key")
    monkeypatch.chdir(tmp_path)
    assert validate_key_file("web.key") == str(tmp_path / "web.key")


def test_validate_missing(tmp_path: Path) -> None:
    missing = tmp_path / "missing.key"
    with pytest.raises(NotFound) as raised:
        validate_key_file(str(missing))
    assert f"key file {missing} not found" in str(raised.value)
    assert raised.value.exit_code == 3


def test_validate_directory(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    directory.mkdir(mode=0o700)
    with pytest.raises(InvalidInput) as raised:
        validate_key_file(str(directory))
    assert f"key file {directory} is not a regular file" in str(raised.value)


def test_validate_empty(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "web.key", data=b"")
    with pytest.raises(InvalidInput) as raised:
        validate_key_file(path)
    assert f"key file {path} is empty" in str(raised.value)
    assert f"head -c 64 /dev/urandom > {path}" in str(raised.value)


def test_validate_too_large(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "web.key", data=b"")
    # A sparse file, so the 8 MiB are never written to disk.
    os.truncate(path, keys.MAX_KEY_FILE_BYTES + 1)
    with pytest.raises(InvalidInput) as raised:
        validate_key_file(path)
    assert "larger than the 8 MiB cryptsetup reads" in str(raised.value)


def test_validate_max_size_accepted(tmp_path: Path) -> None:
    path = write_key_file(tmp_path / "web.key", data=b"")
    os.truncate(path, keys.MAX_KEY_FILE_BYTES)
    assert validate_key_file(path) == path


@pytest.mark.parametrize("mode", [0o640, 0o620, 0o604, 0o602, 0o644, 0o666])
def test_validate_group_other_access(tmp_path: Path, mode: int) -> None:
    path = write_key_file(tmp_path / "web.key", mode=mode)
    with pytest.raises(InvalidInput) as raised:
        validate_key_file(path)
    message = str(raised.value)
    assert f"readable or writable by group or others (mode {mode:04o})" in message
    assert f"run: chmod 600 {path}" in message


def test_validate_wrong_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_key_file(tmp_path / "web.key")
    owner = os.stat(path).st_uid
    other = owner + 1000
    monkeypatch.setattr(os, "geteuid", lambda: other)
    with pytest.raises(InvalidInput) as raised:
        validate_key_file(path)
    message = str(raised.value)
    assert f"owned by uid {owner}, not by uid {other} running lvmvol" in message
    assert f"run: chown {other} {path}" in message


def test_validate_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_key_file(tmp_path / "web.key")
    real_stat = os.stat

    # The tests may run as root, which chmod cannot lock out, so os.stat
    # raises for this one path only.
    def stat_denied(target, *args, **keywords):
        if str(target) == path:
            raise PermissionError(13, "Permission denied", target)
        return real_stat(target, *args, **keywords)

    monkeypatch.setattr(os, "stat", stat_denied)
    with pytest.raises(InvalidInput) as raised:
        validate_key_file(path)
    assert f"key file {path} cannot be read: permission denied" in str(raised.value)


def test_generate_writes_key(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    path = generate_key_file(str(key_dir), MAPPING)
    assert path == str(key_dir / f"{MAPPING}.key")
    assert len(Path(path).read_bytes()) == 64


def test_generate_modes(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    path = generate_key_file(str(key_dir), MAPPING)
    assert mode_of(key_dir) == 0o700
    assert mode_of(path) == 0o400


def test_generate_nested_key_dir(tmp_path: Path) -> None:
    key_dir = tmp_path / "etc" / "lvmvol" / "keys"
    path = generate_key_file(str(key_dir), MAPPING)
    assert mode_of(key_dir) == 0o700
    assert Path(path).is_file()


def test_generate_passes_validation(tmp_path: Path) -> None:
    path = generate_key_file(str(tmp_path / "keys"), MAPPING)
    assert validate_key_file(path) == path


def test_generate_random_keys(tmp_path: Path) -> None:
    first = Path(generate_key_file(str(tmp_path / "keys"), "luks-smokevg-a")).read_bytes()
    second = Path(generate_key_file(str(tmp_path / "keys"), "luks-smokevg-b")).read_bytes()
    assert first != second


def test_generate_never_overwrites(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    path = generate_key_file(str(key_dir), MAPPING)
    before = Path(path).read_bytes()
    with pytest.raises(Conflict) as raised:
        generate_key_file(str(key_dir), MAPPING)
    assert f"key file {path} already exists and lvmvol never overwrites a key" in str(raised.value)
    assert Path(path).read_bytes() == before


def test_generate_existing_private_dir(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    key_dir.mkdir(mode=0o700)
    path = generate_key_file(str(key_dir), MAPPING)
    assert Path(path).is_file()


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o710, 0o701, 0o755])
def test_generate_open_key_dir(tmp_path: Path, mode: int) -> None:
    key_dir = tmp_path / "keys"
    key_dir.mkdir()
    key_dir.chmod(mode)
    with pytest.raises(InvalidInput) as raised:
        generate_key_file(str(key_dir), MAPPING)
    message = str(raised.value)
    assert f"key directory {key_dir} is accessible by group or others (mode {mode:04o})" in message
    assert f"run: chmod 700 {key_dir}" in message
    assert list(key_dir.iterdir()) == []
