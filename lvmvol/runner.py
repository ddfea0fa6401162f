"""The one place where lvmvol starts external processes.

Every command runs from an argv list (never a shell) with ``LC_ALL=C``, closed
standard input unless the caller passes input, and a timeout. A non-zero exit
raises ``CommandError`` with the redacted argv, the exit code, stderr and the
duration. Each command is logged on the ``lvmvol.runner`` logger before it
runs (INFO) and after it ends (DEBUG); ``--verbose`` shows the INFO lines.

With ``dry_run`` set, commands that change the system are logged as
"would run" and not started; commands that only read still run.

``run`` waits for a command and returns its whole output. ``run_streaming``
hands each line of standard output to a callback while the command runs,
for long commands that report progress, such as ``cryptsetup reencrypt``.
``start_detached`` starts a process that must outlive lvmvol if lvmvol is
killed, such as the guard that thaws a frozen filesystem.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

from lvmvol.errors import CommandError, CommandTimeout

if TYPE_CHECKING:
    import ctypes

log = logging.getLogger("lvmvol.runner")

DEFAULT_TIMEOUT = 120.0
# Seconds a streaming command gets to exit after SIGTERM before it is killed.
# cryptsetup reencrypt finishes the block it is writing and saves its
# progress on SIGTERM, which takes about a second on an idle disk.
STOP_GRACE = 30.0
# Lines of standard output a streaming command's result keeps, the last ones.
STREAMED_LINES_KEPT = 1000
# prctl(2) option that sets the signal a child gets when its parent dies.
PR_SET_PDEATHSIG = 1


class Secret(str):
    """An argv element that is shown as ``<redacted>`` in logs and errors."""


def redact(argv: Sequence[str]) -> list[str]:
    return ["<redacted>" if isinstance(arg, Secret) else str(arg) for arg in argv]


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    duration: float
    dry_run: bool = False


@dataclass
class Runner:
    """Runs external commands; holds the options that apply to every call."""

    timeout: float = DEFAULT_TIMEOUT
    dry_run: bool = False
    history: list[CommandResult] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        mutating: bool,
        input: str | bytes | None = None,
        timeout: float | None = None,
        ok_codes: Sequence[int] = (0,),
    ) -> CommandResult:
        """Run ``argv`` and return its result.

        ``mutating`` marks a command that changes the system: dry-run skips
        it. An exit code outside ``ok_codes`` raises ``CommandError``, and
        passing the timeout raises ``CommandTimeout``. ``input`` goes to the
        command's standard input and is never logged.
        """
        argv = list(argv)
        shown = shlex.join(redact(argv))
        if mutating and self.dry_run:
            return self._skip(argv, shown)

        log.info("run: %s", shown)
        limit = self.timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            completed = subprocess.run(
                [str(arg) for arg in argv],
                input=input.encode("utf-8") if isinstance(input, str) else input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                env=_command_environment(),
                timeout=limit,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            stderr = _text(error.stderr)
            log.debug("timed out after %.1f s: %s", limit, shown)
            raise CommandTimeout(redact(argv), limit, stderr) from None
        except FileNotFoundError:
            raise _command_not_found(argv) from None
        duration = time.monotonic() - started

        result = CommandResult(
            redact(argv),
            completed.returncode,
            _text(completed.stdout),
            _text(completed.stderr),
            duration,
        )
        return self._finish(result, shown, ok_codes)

    def run_streaming(
        self,
        argv: Sequence[str],
        *,
        mutating: bool,
        on_line: Callable[[str], None],
        input: str | bytes | None = None,
        timeout: float | None = None,
        cwd: str | None = None,
        ok_codes: Sequence[int] = (0,),
        stop_grace: float = STOP_GRACE,
    ) -> CommandResult:
        """Run ``argv`` and pass each line of its standard output to ``on_line`` as it arrives.

        Logging, redaction, the environment, dry-run, ``input`` and the
        errors are those of ``run``; the result's stdout keeps the last
        ``STREAMED_LINES_KEPT`` lines. When the timeout passes, the command
        gets SIGTERM, then SIGKILL after ``stop_grace`` seconds, and
        ``CommandTimeout`` is raised. An exception from ``on_line``, or
        Ctrl-C, stops the command the same way and propagates. If lvmvol
        itself dies, the kernel sends the command SIGTERM.
        """
        argv = list(argv)
        shown = shlex.join(redact(argv))
        if mutating and self.dry_run:
            return self._skip(argv, shown)

        log.info("run: %s", shown)
        limit = self.timeout if timeout is None else timeout
        libc = _libc()

        def stop_with_parent() -> None:
            # Runs in the child between fork and exec.
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

        started = time.monotonic()
        try:
            process = subprocess.Popen(
                [str(arg) for arg in argv],
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_command_environment(),
                cwd=cwd,
                preexec_fn=stop_with_parent,
            )
        except FileNotFoundError:
            raise _command_not_found(argv) from None

        stderr_chunks: list[str] = []
        helpers = [threading.Thread(target=_collect, args=(process.stderr, stderr_chunks), daemon=True)]
        if input is not None:
            data = input.encode("utf-8") if isinstance(input, str) else input
            helpers.append(threading.Thread(target=_feed, args=(process.stdin, data), daemon=True))
        for helper in helpers:
            helper.start()
        timed_out = threading.Event()

        def stop_on_timeout() -> None:
            timed_out.set()
            _stop(process, stop_grace)

        timer = threading.Timer(limit, stop_on_timeout)
        timer.daemon = True
        timer.start()
        lines: collections.deque[str] = collections.deque(maxlen=STREAMED_LINES_KEPT)
        # Leaving the with block closes the pipes and waits for the process.
        with process:
            try:
                for raw in process.stdout:
                    line = _text(raw).rstrip("\n")
                    lines.append(line)
                    on_line(line)
                process.wait()
            except BaseException:
                log.debug("stopping after an error or interrupt: %s", shown)
                _stop(process, stop_grace)
                raise
            finally:
                timer.cancel()
                for helper in helpers:
                    helper.join(timeout=stop_grace)
        duration = time.monotonic() - started

        stderr = "".join(stderr_chunks)
        if timed_out.is_set():
            log.debug("timed out after %.1f s: %s", limit, shown)
            raise CommandTimeout(redact(argv), limit, stderr)
        stdout = "".join(f"{line}\n" for line in lines)
        result = CommandResult(redact(argv), process.returncode, stdout, stderr, duration)
        return self._finish(result, shown, ok_codes)

    def _skip(self, argv: list[str], shown: str) -> CommandResult:
        """Log and record a mutating command that dry-run does not start."""
        log.info("would run: %s", shown)
        result = CommandResult(redact(argv), 0, "", "", 0.0, dry_run=True)
        self.history.append(result)
        return result

    def _finish(self, result: CommandResult, shown: str, ok_codes: Sequence[int]) -> CommandResult:
        """Record ``result``; raise ``CommandError`` for an exit code outside ``ok_codes``."""
        self.history.append(result)
        log.debug("exit %d after %.3f s: %s", result.returncode, result.duration, shown)
        if result.returncode not in ok_codes:
            raise CommandError(result.argv, result.returncode, result.stderr, result.duration)
        return result


    def start_detached(self, argv: Sequence[str], *, mutating: bool) -> DetachedProcess | None:
        """Start ``argv`` in a session of its own and return without waiting for it.

        Its standard input is a pipe that only lvmvol holds, so the process
        reads end-of-file as soon as lvmvol exits or is killed, even with
        SIGKILL. Unlike the commands ``run`` starts, it gets no signal when
        lvmvol dies, and Ctrl-C on the terminal does not reach it. Its
        output is discarded. In a dry run a mutating command is logged as
        "would run" and None is returned.
        """
        argv = list(argv)
        shown = shlex.join(redact(argv))
        if mutating and self.dry_run:
            log.info("would run: %s", shown)
            return None

        log.info("start: %s", shown)
        try:
            process = subprocess.Popen(
                [str(arg) for arg in argv],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=_command_environment(),
                start_new_session=True,
            )
        except FileNotFoundError:
            raise _command_not_found(argv) from None
        return DetachedProcess(process, command_line=shown)


@dataclass
class DetachedProcess:
    """A process that ``Runner.start_detached`` started, with a pipe to its standard input."""

    process: subprocess.Popen
    # The redacted command line, for log messages.
    command_line: str

    def finish(self, line: str | None = None, wait: float = 5.0) -> None:
        """Write ``line`` (when given) to the process, close its input, and reap it.

        Waits up to ``wait`` seconds for it to exit; one that takes longer
        is left running on its own.
        """
        try:
            if line is not None:
                self.process.stdin.write(f"{line}\n".encode("utf-8"))
            self.process.stdin.close()
        except BrokenPipeError:
            pass  # it exited already; its exit code is not needed
        try:
            returncode = self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            log.debug("still running after %.1f s: %s", wait, self.command_line)
            return
        log.debug("exit %d: %s", returncode, self.command_line)


def _command_not_found(argv: Sequence[str]) -> CommandError:
    return CommandError(
        redact(argv),
        127,
        f"{argv[0]}: command not found",
        0.0,
        hint=f"install the package that provides {argv[0]}",
    )


@functools.lru_cache(maxsize=None)
def _libc() -> ctypes.CDLL:
    """Return the C library, for prctl(2)."""
    import ctypes  # imported here: only streaming commands need it

    return ctypes.CDLL(None, use_errno=True)


def _stop(process: subprocess.Popen, grace: float) -> None:
    """Send SIGTERM, and SIGKILL when ``process`` is still running ``grace`` seconds later."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _collect(stream, chunks: list[str]) -> None:
    for raw in stream:
        chunks.append(_text(raw))


def _feed(stream, data: bytes) -> None:
    try:
        stream.write(data)
        stream.close()
    except BrokenPipeError:
        pass  # the command exited without reading all of it; its exit code gives the reason


def _command_environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment["LC_ALL"] = "C"
    environment.pop("LANGUAGE", None)
    # lvm2 warns on stderr about every inherited descriptor. subprocess closes
    # them, but a caller's wrapper may not; the warning is noise either way.
    environment["LVM_SUPPRESS_FD_WARNINGS"] = "1"
    return environment


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value
