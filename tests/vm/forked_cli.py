"""Run the lvmvol CLI in a forked child of the test process.

Under software emulation, starting Python and importing lvmvol, click and
rich over the VM's 9p root filesystem takes 5 to 30 s per call, which would
make the suite too slow for CI. The test process imports every lvmvol module
once, because the CLI itself imports command modules and operations only
when a command line needs them. Each call forks, points file descriptors 0,
1 and 2 at files, and runs the same ``main()`` the ``lvmvol`` console script
runs. The child is a real
process with its own exit code, environment and standard streams, so
behaviour such as "stdin is not a terminal" is the same as for a script.

Set LVMVOL_TEST_SUBPROCESS=1 to run every call as ``python -m lvmvol``
instead; tests/vm/test_entry_point.py always does.
"""

from __future__ import annotations

import functools
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence


@functools.lru_cache(maxsize=None)
def _import_lvmvol() -> None:
    """Import every module of the lvmvol package, so that no forked child pays for an import."""
    import lvmvol

    # A walk over the files, because lvmvol.ops has no __init__.py and
    # pkgutil.walk_packages does not descend into namespace packages.
    package_root = Path(lvmvol.__file__).parent
    for source in sorted(package_root.rglob("*.py")):
        parts = source.relative_to(package_root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        importlib.import_module(".".join(parts))


def run_forked(
    argv: Sequence[str],
    *,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``lvmvol argv...`` in a forked child and return its exit code and output."""
    _import_lvmvol()  # once, in the parent, before the first fork
    import lvmvol.cli

    with tempfile.TemporaryFile() as stdin_file, tempfile.TemporaryFile() as stdout_file, tempfile.TemporaryFile() as stderr_file:
        if input is not None:
            stdin_file.write(input.encode("utf-8"))
            stdin_file.flush()
            stdin_file.seek(0)
        sys.stdout.flush()
        sys.stderr.flush()

        pid = os.fork()
        if pid == 0:  # child: never returns into pytest
            code = 70
            try:
                if input is not None:
                    os.dup2(stdin_file.fileno(), 0)
                else:
                    devnull = os.open(os.devnull, os.O_RDONLY)
                    os.dup2(devnull, 0)
                os.dup2(stdout_file.fileno(), 1)
                os.dup2(stderr_file.fileno(), 2)
                sys.stdin = open(0, "r", closefd=False)
                sys.stdout = open(1, "w", closefd=False)
                sys.stderr = open(2, "w", closefd=False)
                if env:
                    os.environ.update(env)
                sys.argv = ["lvmvol", *argv]
                try:
                    lvmvol.cli.main()
                    code = 0
                except SystemExit as exit_request:
                    if exit_request.code is None:
                        code = 0
                    elif isinstance(exit_request.code, int):
                        code = exit_request.code
                    else:
                        print(exit_request.code, file=sys.stderr)
                        code = 1
                except BaseException:  # an unexpected error is a test failure: show it
                    import traceback

                    traceback.print_exc()
                    code = 1
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(code)

        returncode = _wait(pid, timeout, argv)
        stdout_file.seek(0)
        stderr_file.seek(0)
        stdout = stdout_file.read().decode("utf-8", errors="replace")
        stderr = stderr_file.read().decode("utf-8", errors="replace")
    return subprocess.CompletedProcess(["lvmvol", *argv], returncode, stdout, stderr)


def _wait(pid: int, timeout: float, argv: Sequence[str]) -> int:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise subprocess.TimeoutExpired(["lvmvol", *argv], timeout)
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
