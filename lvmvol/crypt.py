"""cryptsetup commands for LUKS2 on thin volumes.

Keys never travel on argv: a key file is passed by path with ``--key-file``,
and a passphrase goes to cryptsetup's standard input (``--key-file -``),
which the runner never logs. Every command runs with ``--batch-mode``, so
cryptsetup never asks a question.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from lvmvol.errors import CommandError
from lvmvol.runner import Runner

# cryptsetup's exit code when the device is busy (cryptsetup(8), RETURN CODES).
EXIT_BUSY = 5
# Close retries: udev may still be probing a mapping for a moment after
# open or umount, which makes the first close fail with "busy".
CLOSE_ATTEMPTS = 6
CLOSE_FIRST_DELAY = 0.2

# Size of the LUKS2 header cryptsetup 2.x writes by default (metadata and
# key slot area), which the filesystem on the mapping does not get.
LUKS2_HEADER_BYTES = 16 * 1024 * 1024

# The lowest PBKDF cost LUKS2 accepts. Used only for keys lvmvol generates
# from the kernel's RNG: such a key has full entropy, so key stretching adds
# open time and no strength (docs/encryption.md has the measurements).
MINIMAL_PBKDF = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"]


@dataclass(frozen=True)
class Key:
    """Where a LUKS key comes from: a key file path, or a passphrase kept in memory."""

    path: str | None = None
    passphrase: bytes | None = None
    generated: bool = False

    def __post_init__(self) -> None:
        if (self.path is None) == (self.passphrase is None):
            raise ValueError("a Key has either a path or a passphrase")

    @property
    def source(self) -> str:
        """The key source as recorded and reported: the path, or "passphrase"."""
        return self.path if self.path is not None else "passphrase"

    def __repr__(self) -> str:
        # Never show passphrase bytes, even in a traceback.
        return f"Key(source={self.source!r})"

    def arguments(self) -> list[str]:
        return ["--key-file", self.path if self.path is not None else "-"]

    def stdin(self) -> bytes | None:
        return self.passphrase


def luks_format(runner: Runner, device: str, key: Key) -> None:
    """Write a LUKS2 header to ``device`` with one key slot for ``key``."""
    argv = ["cryptsetup", "luksFormat", "--type", "luks2", "--batch-mode", *key.arguments()]
    if key.generated:
        argv += MINIMAL_PBKDF
    runner.run([*argv, device], mutating=True, input=key.stdin())


def is_luks(runner: Runner, device: str) -> bool:
    result = runner.run(["cryptsetup", "isLuks", device], mutating=False, ok_codes=(0, 1))
    return result.returncode == 0


def open_mapping(
    runner: Runner,
    device: str,
    mapping: str,
    key: Key,
    allow_discards: bool = False,
    read_only: bool = False,
) -> None:
    argv = ["cryptsetup", "open", "--type", "luks2", "--batch-mode", *key.arguments()]
    if allow_discards:
        argv.append("--allow-discards")
    if read_only:
        argv.append("--readonly")
    runner.run([*argv, device, mapping], mutating=True, input=key.stdin())


def close_mapping(runner: Runner, mapping: str) -> None:
    """Close ``mapping``, retrying with a bounded backoff while it is busy.

    Raises the last ``CommandError`` when it is still busy after the retries.
    """
    delay = CLOSE_FIRST_DELAY
    for attempt in range(CLOSE_ATTEMPTS):
        try:
            runner.run(["cryptsetup", "close", mapping], mutating=True)
            return
        except CommandError as error:
            if error.returncode != EXIT_BUSY or attempt == CLOSE_ATTEMPTS - 1:
                raise
        # NOTE: a timed backoff, not a udev event: there is no event for
        # "the last opener closed the device".
        time.sleep(delay)
        delay *= 2


def erase(runner: Runner, device: str) -> None:
    """Erase every LUKS key slot on ``device``, so its data can never be decrypted again."""
    runner.run(["cryptsetup", "erase", "--batch-mode", device], mutating=True)


def test_key(runner: Runner, device: str, key: Key) -> bool:
    """Return True when ``key`` opens a key slot of ``device`` (checked without opening a mapping)."""
    result = runner.run(
        ["cryptsetup", "open", "--test-passphrase", "--batch-mode", *key.arguments(), device],
        mutating=False,
        input=key.stdin(),
        ok_codes=(0, 1, 2),
    )
    return result.returncode == 0
