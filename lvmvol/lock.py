"""The exclusive lock that serialises lvmvol commands which change the system.

Each such command holds ``flock(LOCK_EX)`` on ``lock_dir/lvmvol.lock`` from
before it reads the state it acts on until it exits, so two commands never
interleave their read, check and act steps. Read-only commands never take
it. The kernel releases the lock when the holder exits, also after a crash
or ``kill -9``, so a stale lock file never blocks anyone.

The holder writes its pid and argv into the lock file, so that a command
that gives up waiting can name it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Sequence

from lvmvol.errors import LockTimeout

log = logging.getLogger("lvmvol.lock")

LOCK_FILE_NAME = "lvmvol.lock"
# Polling interval while another command holds the lock: it starts short so
# that back-to-back commands hand over quickly, and grows to the maximum.
FIRST_POLL = 0.02
MAX_POLL = 0.5


@dataclass(frozen=True)
class Holder:
    """The command that holds the lock, as it recorded itself in the lock file."""

    pid: int | None
    argv: list[str]

    def describe(self) -> str:
        if self.pid is None:
            return "another lvmvol command (it has not recorded its pid yet)"
        return f"pid {self.pid} ({' '.join(self.argv) or 'argv unknown'})"


def lock_path(lock_dir: str) -> str:
    return os.path.join(lock_dir, LOCK_FILE_NAME)


def parse_holder(text: str) -> Holder:
    """Parse the lock file's content: one JSON object with ``pid`` and ``argv``."""
    try:
        document = json.loads(text)
        pid = int(document["pid"])
        argv = [str(arg) for arg in document.get("argv", [])]
    except (ValueError, KeyError, TypeError):
        return Holder(None, [])
    return Holder(pid, argv)


class CommandLock:
    """An exclusive ``flock`` on the lock file, used as a context manager.

    ``__enter__`` waits up to ``timeout`` seconds and raises ``LockTimeout``
    naming the holder when the lock stays taken.
    """

    def __init__(self, lock_dir: str, timeout: float, argv: Sequence[str] | None = None):
        self.path = lock_path(lock_dir)
        self.lock_dir = lock_dir
        self.timeout = timeout
        self.argv = list(sys.argv if argv is None else argv)
        self._descriptor: int | None = None

    def __enter__(self) -> "CommandLock":
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> None:
        os.makedirs(self.lock_dir, mode=0o755, exist_ok=True)
        # No O_TRUNC: the file holds the current holder's record until this
        # process owns the lock.
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._wait(descriptor)
        except BaseException:
            os.close(descriptor)
            raise
        self._descriptor = descriptor
        record = json.dumps({"pid": os.getpid(), "argv": self.argv}).encode("utf-8")
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, record + b"\n", 0)

    def _wait(self, descriptor: int) -> None:
        deadline = time.monotonic() + self.timeout
        delay = FIRST_POLL
        announced = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except OSError as error:
                if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
            holder = read_holder(descriptor)
            if not announced:
                log.info("waiting up to %g s for the lock held by %s", self.timeout, holder.describe())
                announced = True
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"another lvmvol command holds the lock {self.path}: {holder.describe()}; "
                    f"waited {self.timeout:g} s",
                    "wait for it to finish, or raise lock_timeout in the config file",
                )
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
            delay = min(delay * 2, MAX_POLL)

    def release(self) -> None:
        if self._descriptor is None:
            return
        # The record is cleared before the unlock, so a waiter that reads the
        # file later never names a command that has finished.
        os.ftruncate(self._descriptor, 0)
        fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        os.close(self._descriptor)
        self._descriptor = None


def read_holder(descriptor: int) -> Holder:
    """Return the holder recorded in the open lock file."""
    try:
        text = os.pread(descriptor, 4096, 0).decode("utf-8", errors="replace")
    except OSError:
        return Holder(None, [])
    return parse_holder(text)
