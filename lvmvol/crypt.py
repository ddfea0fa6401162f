"""cryptsetup commands for LUKS2 on thin volumes.

Keys never travel on argv: a key file is passed by path with ``--key-file``,
and a passphrase goes to cryptsetup's standard input (``--key-file -``),
which the runner never logs. Every command runs with ``--batch-mode``, so
cryptsetup never asks a question.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable

from lvmvol.errors import CommandError
from lvmvol.runner import Runner

# cryptsetup's exit code when the device is busy (cryptsetup(8), RETURN CODES).
EXIT_BUSY = 5
# cryptsetup(8), RETURN CODES: no key slot opens with the given key or passphrase.
EXIT_WRONG_KEY = 2
# Close retries: udev may still be probing a mapping for a moment after
# open or umount, which makes the first close fail with "busy".
CLOSE_ATTEMPTS = 6
CLOSE_FIRST_DELAY = 0.2

MiB = 1024 * 1024
# Size of the LUKS2 header cryptsetup 2.x writes by default (metadata and
# key slot area), which the filesystem on the mapping does not get.
LUKS2_HEADER_BYTES = 16 * MiB
# --reduce-device-size for in-place encryption, the value
# cryptsetup-reencrypt(8) recommends: twice the default LUKS2 header.
ENCRYPT_REDUCE_BYTES = 32 * MiB
# One JSON progress line per second on stdout, also with --batch-mode.
PROGRESS_OPTIONS = ["--progress-json", "--progress-frequency", "1"]

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

    def material(self) -> bytes:
        """Return the bytes cryptsetup hashes: the key file's content, or the passphrase."""
        if self.passphrase is not None:
            return self.passphrase
        with open(self.path, "rb") as handle:
            return handle.read()


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


def resize_mapping(runner: Runner, mapping: str, key: Key) -> None:
    """Grow the open ``mapping`` to the size of the device under it.

    The key is passed because cryptsetup 2.x asks for it when the LUKS2
    volume key lives in the kernel keyring, which is its default.
    """
    argv = ["cryptsetup", "resize", "--batch-mode", *key.arguments(), mapping]
    runner.run(argv, mutating=True, input=key.stdin())


def erase(runner: Runner, device: str) -> None:
    """Erase every LUKS key slot on ``device``, so its data can never be decrypted again."""
    runner.run(["cryptsetup", "erase", "--batch-mode", device], mutating=True)


def add_key(runner: Runner, device: str, current: Key, new: Key) -> None:
    """Add a key slot for ``new``, unlocked with ``current``.

    When both keys are passphrases, both go to standard input, the current
    one first, and ``--keyfile-size`` tells cryptsetup where it ends.
    """
    argv = ["cryptsetup", "luksAddKey", "--batch-mode", *current.arguments()]
    if current.passphrase is not None and new.passphrase is not None:
        argv += ["--keyfile-size", str(len(current.passphrase))]
    argv += ["--new-keyfile", new.path if new.path is not None else "-"]
    if new.generated:
        argv += MINIMAL_PBKDF
    input = (current.passphrase or b"") + (new.passphrase or b"")
    runner.run([*argv, device], mutating=True, input=input or None)


def remove_key(runner: Runner, device: str, key: Key) -> None:
    """Remove the key slot that ``key`` opens.

    cryptsetup 2.6.1 removes even the last key slot without asking when
    standard input is not a terminal, so callers check first that another
    key slot exists.
    """
    runner.run(
        ["cryptsetup", "luksRemoveKey", "--batch-mode", *key.arguments(), device],
        mutating=True,
        input=key.stdin(),
    )


def luks2_metadata(runner: Runner, device: str) -> dict:
    """Return the LUKS2 header's JSON metadata: keyslots, segments, config (cryptsetup 2.4 and later)."""
    result = runner.run(["cryptsetup", "luksDump", "--dump-json-metadata", device], mutating=False)
    return json.loads(result.stdout)


def key_slots(metadata: dict) -> list[int]:
    """Return the numbers of the key slots that hold a key; reencryption's own slot is not one."""
    return sorted(int(number) for number, slot in metadata.get("keyslots", {}).items() if slot.get("type") == "luks2")


def reencryption_in_progress(metadata: dict) -> bool:
    """Return True when the header records an unfinished reencryption or in-place encryption.

    cryptsetup marks it with an ``online-reencrypt`` requirement (suffixed
    ``-v2`` or ``-v3`` since 2.2), which older versions refuse to open.
    """
    requirements = metadata.get("config", {}).get("requirements", {}).get("mandatory", [])
    return any(requirement.startswith("online-reencrypt") for requirement in requirements)


def test_key(runner: Runner, device: str, key: Key) -> bool:
    """Return True when ``key`` opens a key slot of ``device`` (checked without opening a mapping)."""
    result = runner.run(
        ["cryptsetup", "open", "--test-passphrase", "--batch-mode", *key.arguments(), device],
        mutating=False,
        input=key.stdin(),
        ok_codes=(0, 1, 2),
    )
    return result.returncode == 0


# In-place encryption


@dataclass(frozen=True)
class ReencryptProgress:
    """One progress report of ``cryptsetup reencrypt``."""

    done_bytes: int
    total_bytes: int
    # Bytes per second since this cryptsetup run started.
    speed: int
    eta_seconds: float


ProgressCallback = Callable[[ReencryptProgress], None]


def parse_progress(line: str) -> ReencryptProgress | None:
    """Parse one ``--progress-json`` line of cryptsetup 2.4 and later; None for any other line.

    cryptsetup prints every number as a string, for example
    ``{"device":"/dev/dm-3","device_bytes":"8192","device_size":"44040192",
    "speed":"126877696","eta_ms":"2520012","time_ms":"5561235"}``.
    """
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        document = json.loads(line)
        return ReencryptProgress(
            done_bytes=int(document["device_bytes"]),
            total_bytes=int(document["device_size"]),
            speed=int(document.get("speed", "0")),
            eta_seconds=int(document.get("eta_ms", "0")) / 1000,
        )
    except (ValueError, KeyError, TypeError):
        return None


def _progress_handler(on_progress: ProgressCallback | None) -> Callable[[str], None]:
    def handle(line: str) -> None:
        progress = parse_progress(line)
        if progress is not None and on_progress is not None:
            on_progress(progress)

    return handle


def encrypt_in_place(
    runner: Runner,
    device: str,
    key: Key,
    workdir: str,
    on_progress: ProgressCallback | None,
    timeout: float,
) -> None:
    """Encrypt the plain data on ``device`` with LUKS2, moving it up to make room for the header.

    The last ``ENCRYPT_REDUCE_BYTES`` of the device must hold nothing of
    value. cryptsetup writes a temporary header file into ``workdir``
    (its working directory) before it places the header on the device.
    """
    argv = [
        "cryptsetup", "reencrypt", "--encrypt", "--type", "luks2",
        "--reduce-device-size", f"{ENCRYPT_REDUCE_BYTES // MiB}M",
        "--batch-mode", *PROGRESS_OPTIONS, *key.arguments(),
    ]
    if key.generated:
        argv += MINIMAL_PBKDF
    runner.run_streaming(
        [*argv, device],
        mutating=True,
        on_line=_progress_handler(on_progress),
        input=key.stdin(),
        timeout=timeout,
        cwd=workdir,
    )


def resume_reencryption(
    runner: Runner, device: str, key: Key, on_progress: ProgressCallback | None, timeout: float
) -> None:
    """Continue the reencryption that the header of ``device`` records; never start a new one."""
    argv = ["cryptsetup", "reencrypt", "--resume-only", "--batch-mode", *PROGRESS_OPTIONS, *key.arguments()]
    runner.run_streaming(
        [*argv, device],
        mutating=True,
        on_line=_progress_handler(on_progress),
        input=key.stdin(),
        timeout=timeout,
    )


def repair(runner: Runner, device: str, key: Key) -> None:
    """Recover the header of ``device`` after a reencryption was cut off mid-write.

    cryptsetup refuses to resume such a reencryption until the repair has
    run; on a header that needs nothing it checks the key and changes nothing.
    """
    runner.run(["cryptsetup", "repair", "--batch-mode", *key.arguments(), device], mutating=True, input=key.stdin())
