"""Key files: checking the ones administrators bring, generating the ones lvmvol makes."""

from __future__ import annotations

import os
import stat

from lvmvol.errors import Conflict, InvalidInput, NotFound

# 512 bits from the kernel's RNG: twice the 256 bits an AES-256 XTS half
# key needs, so the key file is never the weak link.
GENERATED_KEY_BYTES = 64
# cryptsetup reads at most 8 MiB from a key file by default.
MAX_KEY_FILE_BYTES = 8 * 1024 * 1024


def validate_key_file(path: str) -> str:
    """Return the absolute path of a usable key file, or raise with the fix.

    A key file must exist, be a regular file, be non-empty, be no larger
    than cryptsetup reads, be owned by the user running lvmvol (root), and
    be neither readable nor writable by group or others.
    """
    path = os.path.abspath(path)
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise NotFound(f"key file {path} not found", "check the path, or omit --key-file to generate one") from None
    except PermissionError:
        raise InvalidInput(f"key file {path} cannot be read: permission denied", "run lvmvol as root") from None
    if not stat.S_ISREG(status.st_mode):
        raise InvalidInput(f"key file {path} is not a regular file", "pass a file that contains the key")
    if status.st_size == 0:
        raise InvalidInput(
            f"key file {path} is empty",
            f"write a key into it, for example: head -c 64 /dev/urandom > {path}",
        )
    if status.st_size > MAX_KEY_FILE_BYTES:
        raise InvalidInput(f"key file {path} is larger than the 8 MiB cryptsetup reads")
    if status.st_uid != os.geteuid():
        raise InvalidInput(
            f"key file {path} is owned by uid {status.st_uid}, not by uid {os.geteuid()} running lvmvol",
            f"run: chown {os.geteuid()} {path}",
        )
    if status.st_mode & 0o066:
        mode = stat.S_IMODE(status.st_mode)
        raise InvalidInput(
            f"key file {path} is readable or writable by group or others (mode {mode:04o})",
            f"run: chmod 600 {path}",
        )
    return path


def generated_key_path(key_dir: str, mapping_name: str) -> str:
    return os.path.join(key_dir, f"{mapping_name}.key")


def generate_key_file(key_dir: str, mapping_name: str) -> str:
    """Write a new random key to ``key_dir/MAPPING.key`` (mode 0400) and return its path.

    The directory is created with mode 0700 when missing, and refused when
    group or others can enter it. An existing key file is never overwritten.
    """
    os.makedirs(key_dir, mode=0o700, exist_ok=True)
    directory_mode = stat.S_IMODE(os.stat(key_dir).st_mode)
    if directory_mode & 0o077:
        raise InvalidInput(
            f"key directory {key_dir} is accessible by group or others (mode {directory_mode:04o})",
            f"run: chmod 700 {key_dir}",
        )
    path = generated_key_path(key_dir, mapping_name)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    except FileExistsError:
        raise Conflict(
            f"key file {path} already exists and lvmvol never overwrites a key",
            "move it away if no volume uses it, or pass it with --key-file",
        ) from None
    try:
        os.write(descriptor, os.urandom(GENERATED_KEY_BYTES))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return path
