"""The configuration file: lvmvol.config.load_config."""

from __future__ import annotations

from pathlib import Path

import pytest

from lvmvol.config import ENVIRONMENT_VARIABLE, Config, load_config
from lvmvol.errors import ConfigError


def write_config(directory: Path, text: str, name: str = "config.toml") -> Path:
    path = directory / name
    path.write_text(text)
    return path


def test_defaults_without_file(default_config_path: Path) -> None:
    assert not default_config_path.exists()
    loaded = load_config()
    assert loaded == Config()
    assert loaded.source is None


def test_default_values() -> None:
    loaded = load_config()
    assert loaded.vg == "lvmvol"
    assert loaded.pool == ""
    assert loaded.filesystem == "ext4"
    assert loaded.mount_root == "/var/lib/lvmvol"
    assert loaded.key_dir == "/etc/lvmvol/keys"
    assert loaded.command_timeout == 120.0
    assert loaded.device_timeout == 30.0


def test_default_file_is_read(default_config_path: Path) -> None:
    default_config_path.parent.mkdir(parents=True)
    default_config_path.write_text('vg = "fromdefault"\n')
    loaded = load_config()
    assert loaded.vg == "fromdefault"
    assert loaded.source == str(default_config_path)


def test_explicit_file(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        'vg = "data"\npool = "data/thin"\nfilesystem = "xfs"\nmount_root = "/mnt/lvmvol"\n'
        'key_dir = "/root/keys"\ncommand_timeout = 30\ndevice_timeout = 2.5\n',
    )
    loaded = load_config(str(path))
    assert loaded.vg == "data"
    assert loaded.pool == "data/thin"
    assert loaded.filesystem == "xfs"
    assert loaded.mount_root == "/mnt/lvmvol"
    assert loaded.key_dir == "/root/keys"
    assert loaded.device_timeout == 2.5
    assert loaded.source == str(path)


def test_integer_timeout_becomes_float(tmp_path: Path) -> None:
    loaded = load_config(str(write_config(tmp_path, "command_timeout = 30\n")))
    assert loaded.command_timeout == 30.0
    assert isinstance(loaded.command_timeout, float)


def test_partial_file_keeps_defaults(tmp_path: Path) -> None:
    loaded = load_config(str(write_config(tmp_path, 'filesystem = "none"\n')))
    assert loaded.filesystem == "none"
    assert loaded.vg == "lvmvol"
    assert loaded.command_timeout == 120.0


def test_empty_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    loaded = load_config(str(path))
    assert loaded.vg == "lvmvol"
    assert loaded.source == str(path)


def test_explicit_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    message = str(raised.value)
    assert f"configuration file {path} not found" in message
    assert "--config" in message
    assert raised.value.exit_code == 2


def test_env_file_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(path))
    with pytest.raises(ConfigError) as raised:
        load_config()
    assert str(path) in str(raised.value)


def test_env_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_config(tmp_path, 'vg = "fromenv"\n')
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(path))
    loaded = load_config()
    assert loaded.vg == "fromenv"
    assert loaded.source == str(path)


def test_explicit_path_overrides_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, str(write_config(tmp_path, 'vg = "fromenv"\n', "env.toml")))
    explicit = write_config(tmp_path, 'vg = "explicit"\n', "explicit.toml")
    assert load_config(str(explicit)).vg == "explicit"


def test_empty_env_uses_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, "")
    assert load_config() == Config()


@pytest.mark.parametrize("key", ["vgname", "Vg", "timeout", "source"])
def test_unknown_key(tmp_path: Path, key: str) -> None:
    path = write_config(tmp_path, f'{key} = "x"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    message = str(raised.value)
    assert f"unknown key {key!r}" in message
    assert str(path) in message
    assert "known keys: command_timeout, device_timeout, encrypt_timeout, filesystem, key_dir" in message


def test_unknown_table(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[pools]\nname = "x"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    assert "unknown key 'pools'" in str(raised.value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("vg = 5", "vg must be a string, not 5"),
        ("pool = true", "pool must be a string, not True"),
        ('filesystem = ["ext4"]', "filesystem must be a string"),
        ("mount_root = {}", "mount_root must be a string"),
        ('command_timeout = "30"', "command_timeout must be a number, not '30'"),
        ("command_timeout = true", "command_timeout must be a number, not True"),
        ("device_timeout = [1]", "device_timeout must be a number"),
    ],
)
def test_wrong_type(tmp_path: Path, line: str, expected: str) -> None:
    path = write_config(tmp_path, line + "\n")
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    message = str(raised.value)
    assert expected in message
    assert str(path) in message


@pytest.mark.parametrize("value", ["0", "-1", "0.0", "-0.5"])
@pytest.mark.parametrize("key", ["command_timeout", "device_timeout"])
def test_timeout_not_positive(tmp_path: Path, key: str, value: str) -> None:
    path = write_config(tmp_path, f"{key} = {value}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    assert f"{key} must be greater than zero" in str(raised.value)


@pytest.mark.parametrize("filesystem", ["btrfs", "EXT4", "", "ext3"])
def test_invalid_filesystem(tmp_path: Path, filesystem: str) -> None:
    path = write_config(tmp_path, f'filesystem = "{filesystem}"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    message = str(raised.value)
    assert f"invalid filesystem {filesystem!r}" in message
    assert "use one of ext4, xfs, none" in message


@pytest.mark.parametrize("filesystem", ["ext4", "xfs", "none"])
def test_valid_filesystem(tmp_path: Path, filesystem: str) -> None:
    path = write_config(tmp_path, f'filesystem = "{filesystem}"\n')
    assert load_config(str(path)).filesystem == filesystem


@pytest.mark.parametrize("key", ["mount_root", "key_dir"])
@pytest.mark.parametrize("value", ["mnt", "./mnt", "~/keys", ""])
def test_relative_path(tmp_path: Path, key: str, value: str) -> None:
    path = write_config(tmp_path, f'{key} = "{value}"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    assert f"{key} must be an absolute path, not {value!r}" in str(raised.value)


def test_invalid_toml(tmp_path: Path) -> None:
    path = write_config(tmp_path, "vg = \n")
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    message = str(raised.value)
    assert f"{path}: invalid TOML" in message
    assert raised.value.exit_code == 2


def test_config_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "lvmvol.toml"
    path.write_bytes(b'mount_root = "/srv/caf\xe9"\n')

    with pytest.raises(ConfigError) as raised:
        load_config(str(path))

    assert f"{path}: invalid TOML: the file is not UTF-8" in str(raised.value)
    assert raised.value.exit_code == 2


def test_directory_as_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(str(tmp_path))
    assert f"cannot read configuration file {tmp_path}" in str(raised.value)


def test_capacity_defaults() -> None:
    loaded = load_config()
    assert loaded.overcommit_ratio == 2.0
    assert loaded.pool_data_threshold == 80.0
    assert loaded.pool_metadata_threshold == 80.0


def test_capacity_keys_read(tmp_path: Path) -> None:
    path = write_config(tmp_path, "overcommit_ratio = 5\npool_data_threshold = 90.5\npool_metadata_threshold = 70\n")
    loaded = load_config(str(path))
    assert loaded.overcommit_ratio == 5.0
    assert loaded.pool_data_threshold == 90.5
    assert loaded.pool_metadata_threshold == 70.0


@pytest.mark.parametrize("key", ["pool_data_threshold", "pool_metadata_threshold"])
def test_threshold_above_100(tmp_path: Path, key: str) -> None:
    path = write_config(tmp_path, f"{key} = 101\n")
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    assert f"{key} is a percentage and must be at most 100, not 101" in str(raised.value)


@pytest.mark.parametrize("key", ["overcommit_ratio", "pool_data_threshold"])
def test_capacity_key_not_positive(tmp_path: Path, key: str) -> None:
    path = write_config(tmp_path, f"{key} = 0\n")
    with pytest.raises(ConfigError) as raised:
        load_config(str(path))
    assert f"{key} must be greater than zero" in str(raised.value)
