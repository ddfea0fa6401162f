"""The TOML configuration file: defaults for volume groups, pools, filesystems and timeouts.

The file is optional. Its path is ``--config``, else ``$LVMVOL_CONFIG``, else
``/etc/lvmvol/config.toml``; a path given by the option or the variable must
exist, the default one may be missing. Unknown keys and values of the wrong
type are errors, so a typo never silently falls back to a default.
docs/config.md lists every key.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields

from lvmvol.errors import ConfigError, InvalidInput
from lvmvol.mounts import split_options

DEFAULT_PATH = "/etc/lvmvol/config.toml"
ENVIRONMENT_VARIABLE = "LVMVOL_CONFIG"

FILESYSTEMS = ("ext4", "xfs", "none")

# Keys whose value is a percentage, from above 0 to 100.
PERCENT_KEYS = ("pool_data_threshold", "pool_metadata_threshold")


@dataclass
class Config:
    """Settings from the configuration file, with their defaults."""

    # Volume group that `pool init` creates or reuses when --vg is not given.
    vg: str = "lvmvol"
    # Default pool for volume commands, as "VG/NAME" or "NAME"; empty means
    # "the only pool lvmvol manages". `pool init` also takes its default
    # --name from it.
    pool: str = ""
    # Filesystem that `volume create` makes when --fs is not given.
    filesystem: str = "ext4"
    # Directory under which `volume mount` creates default mountpoints.
    mount_root: str = "/var/lib/lvmvol"
    # Mount options for every `volume mount`, comma-separated; --options
    # adds to them and overrides them.
    mount_options: str = "nodev,nosuid"
    # Directory for key files that lvmvol generates itself.
    key_dir: str = "/etc/lvmvol/keys"
    # File listing the backing files of loop-backed pools, one path a line,
    # which `pool init --file` adds to and `activate` attaches at boot. The
    # VG tag that names the file sits inside the file, so it cannot be read
    # before the file is attached.
    loop_file_list: str = "/etc/lvmvol/loop-files"
    # Seconds before an external command is killed.
    command_timeout: float = 120.0
    # Seconds before an in-place encryption is stopped. It stops cleanly and
    # resumes when the command runs again. One day covers about 1 TiB at
    # 12 MiB/s, a rate slower than most disks encrypt.
    encrypt_timeout: float = 86400.0
    # Seconds to wait for a device node to appear through udev.
    device_timeout: float = 30.0
    # Highest committed virtual size of a thin pool (the sizes of all its
    # thin volumes and snapshots added up) as a multiple of its data size
    # that `volume create` and `snapshot` accept without --allow-overcommit.
    overcommit_ratio: float = 2.0
    # Data and metadata use of a thin pool, in percent, from which `volume
    # create` and `snapshot` refuse to add to it and listings flag it.
    pool_data_threshold: float = 80.0
    pool_metadata_threshold: float = 80.0
    # Directory of the lock file that commands changing the system hold.
    lock_dir: str = "/run/lock"
    # Seconds such a command waits for another one to release the lock.
    lock_timeout: float = 60.0
    # Path the configuration was read from, or None when defaults are used.
    source: str | None = None


def _check_value(key: str, value: object, default: object, path: str) -> object:
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: {key} must be a number, not {value!r}")
        if value <= 0:
            raise ConfigError(f"{path}: {key} must be greater than zero, not {value!r}")
        if key in PERCENT_KEYS and value > 100:
            raise ConfigError(f"{path}: {key} is a percentage and must be at most 100, not {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ConfigError(f"{path}: {key} must be a string, not {value!r}")
    if key == "filesystem" and value not in FILESYSTEMS:
        raise ConfigError(
            f"{path}: invalid filesystem {value!r}", f"use one of {', '.join(FILESYSTEMS)}"
        )
    if key == "mount_options":
        try:
            split_options(value, f"{path}: mount_options")
        except InvalidInput as error:
            raise ConfigError(error.message, error.hint) from None
    if key in ("mount_root", "key_dir", "loop_file_list", "lock_dir") and not value.startswith("/"):
        raise ConfigError(f"{path}: {key} must be an absolute path, not {value!r}")
    return value


def _parse_toml(path: str, content: bytes) -> dict:
    """Parse the TOML ``content`` of the file at ``path``, or raise ``ConfigError``."""
    # Imported only once there is a file to parse: the defaults need no parser.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised only on Python 3.9 and 3.10
        import tomli as tomllib

    try:
        return tomllib.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: the file is not UTF-8", "save it as UTF-8") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None


def load_config(path: str | None = None) -> Config:
    """Read the configuration file and return the settings merged over the defaults.

    Raises ``ConfigError`` when an explicitly named file is missing, the TOML
    is invalid, a key is unknown, or a value has the wrong type.
    """
    explicit = path or os.environ.get(ENVIRONMENT_VARIABLE)
    config_path = explicit or DEFAULT_PATH
    try:
        with open(config_path, "rb") as handle:
            content = handle.read()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(
                f"configuration file {config_path} not found",
                "create it or pass another path with --config",
            ) from None
        return Config()
    except OSError as error:
        raise ConfigError(f"cannot read configuration file {config_path}: {error.strerror}") from None
    raw = _parse_toml(config_path, content)

    defaults = Config()
    known = {item.name for item in fields(Config) if item.name != "source"}
    values: dict[str, object] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(
                f"{config_path}: unknown key {key!r}",
                f"known keys: {', '.join(sorted(known))}",
            )
        values[key] = _check_value(key, value, getattr(defaults, key), config_path)
    return Config(**values, source=str(config_path))
