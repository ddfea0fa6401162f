"""The command runner, run with harmless real commands: lvmvol.runner."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from lvmvol.errors import CommandError, CommandTimeout
from lvmvol.runner import Runner, Secret, redact

from .conftest import MISSING_PROGRAM_PREFIX

PYTHON = sys.executable


def python(code: str, *args: str) -> list[str]:
    return [PYTHON, "-c", code, *args]


def test_run_returns_output() -> None:
    result = Runner().run(python("import sys; print('out'); print('err', file=sys.stderr)"), mutating=False)
    assert result.returncode == 0
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"
    assert result.dry_run is False
    assert result.duration > 0


def test_run_records_history() -> None:
    runner = Runner()
    runner.run(["true"], mutating=False)
    assert [entry.argv for entry in runner.history] == [["true"]]


def test_child_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    monkeypatch.setenv("LANGUAGE", "de")
    code = "import os; print(os.environ.get('LC_ALL')); print(os.environ.get('LANGUAGE', '-'))"
    result = Runner().run(python(code), mutating=False)
    assert result.stdout.splitlines() == ["C", "-"]


def test_child_suppresses_lvm_fd_warnings() -> None:
    code = "import os; print(os.environ.get('LVM_SUPPRESS_FD_WARNINGS'))"
    assert Runner().run(python(code), mutating=False).stdout == "1\n"


def test_child_keeps_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LVMVOL_UNIT_TEST_VALUE", "kept")
    code = "import os; print(os.environ['LVMVOL_UNIT_TEST_VALUE'])"
    assert Runner().run(python(code), mutating=False).stdout == "kept\n"


def test_parent_environment_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    Runner().run(["true"], mutating=False)
    assert os.environ["LC_ALL"] == "de_DE.UTF-8"


def test_nonzero_exit() -> None:
    argv = python("import sys; sys.stderr.write('first\\nlast line\\n'); sys.exit(3)")
    with pytest.raises(CommandError) as raised:
        Runner().run(argv, mutating=False)
    error = raised.value
    assert error.argv == argv
    assert error.returncode == 3
    assert error.stderr == "first\nlast line\n"
    assert error.duration > 0
    assert error.exit_code == 5
    assert str(error) == f"{PYTHON} failed with exit code 3: last line"


def test_nonzero_exit_without_stderr() -> None:
    with pytest.raises(CommandError) as raised:
        Runner().run(["false"], mutating=False)
    assert str(raised.value) == "false failed with exit code 1"


def test_nonzero_exit_recorded_in_history() -> None:
    runner = Runner()
    with pytest.raises(CommandError):
        runner.run(["false"], mutating=False)
    assert runner.history[-1].returncode == 1


def test_ok_codes() -> None:
    result = Runner().run(["false"], mutating=False, ok_codes=(0, 1))
    assert result.returncode == 1


def test_ok_codes_exclude_zero() -> None:
    with pytest.raises(CommandError):
        Runner().run(["true"], mutating=False, ok_codes=(2,))


def test_secret_reaches_command() -> None:
    result = Runner().run(python("import sys; print(sys.argv[1])", Secret("hunter2")), mutating=False)
    assert result.stdout == "hunter2\n"


def test_secret_redacted_in_result() -> None:
    result = Runner().run(python("pass", Secret("hunter2")), mutating=False)
    assert result.argv[-1] == "<redacted>"
    assert "hunter2" not in result.argv


def test_secret_redacted_in_error() -> None:
    argv = python("import sys; sys.exit(1)", "--key", Secret("hunter2"))
    with pytest.raises(CommandError) as raised:
        Runner().run(argv, mutating=False)
    error = raised.value
    assert error.argv[-2:] == ["--key", "<redacted>"]
    assert "hunter2" not in str(error)
    assert "hunter2" not in repr(error.argv)


def test_secret_redacted_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lvmvol")
    with pytest.raises(CommandError):
        Runner().run(python("import sys; sys.exit(1)", Secret("hunter2")), mutating=False)
    Runner().run(python("pass", Secret("hunter2")), mutating=False)
    assert caplog.records
    assert "hunter2" not in caplog.text
    assert "<redacted>" in caplog.text


def test_secret_redacted_in_dry_run(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lvmvol")
    result = Runner(dry_run=True).run(["true", Secret("hunter2")], mutating=True)
    assert "hunter2" not in caplog.text
    assert result.argv == ["true", "<redacted>"]


def test_input_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lvmvol")
    result = Runner().run(python("import sys; print(len(sys.stdin.read()))"), mutating=False, input="passphrase")
    assert result.stdout == "10\n"
    assert "passphrase" not in caplog.text


def test_redact() -> None:
    assert redact(["a", Secret("b"), "c"]) == ["a", "<redacted>", "c"]


def test_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lvmvol")
    Runner().run(["true"], mutating=False)
    messages = [(record.levelno, record.getMessage()) for record in caplog.records]
    assert messages[0] == (logging.INFO, "run: true")
    assert messages[1][0] == logging.DEBUG
    assert messages[1][1].startswith("exit 0 after ")


def test_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as raised:
        Runner().run(["sleep", "10"], mutating=False, timeout=0.3)
    elapsed = time.monotonic() - started
    error = raised.value
    assert elapsed < 5
    assert error.argv == ["sleep", "10"]
    assert error.exit_code == 6
    assert "sleep did not finish within 0.3 s and was killed" in str(error)
    assert "command_timeout" in str(error)


def test_timeout_from_runner() -> None:
    with pytest.raises(CommandTimeout):
        Runner(timeout=0.3).run(["sleep", "10"], mutating=False)


def test_timeout_is_command_error() -> None:
    with pytest.raises(CommandError):
        Runner().run(["sleep", "10"], mutating=False, timeout=0.2)


def test_timeout_redacts_secret() -> None:
    with pytest.raises(CommandTimeout) as raised:
        Runner().run(python("import time; time.sleep(10)", Secret("hunter2")), mutating=False, timeout=0.5)
    assert raised.value.argv[-1] == "<redacted>"
    assert "hunter2" not in str(raised.value)


def test_missing_command() -> None:
    name = MISSING_PROGRAM_PREFIX + "lvcreate"
    with pytest.raises(CommandError) as raised:
        Runner().run([name, "--version"], mutating=False)
    error = raised.value
    assert error.returncode == 127
    assert error.argv == [name, "--version"]
    assert f"{name}: command not found" in str(error)
    assert f"install the package that provides {name}" in str(error)
    assert error.exit_code == 5


def test_dry_run_skips_mutating(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lvmvol")
    marker = tmp_path / "ran"
    argv = python(f"open({str(marker)!r}, 'w').close()")
    result = Runner(dry_run=True).run(argv, mutating=True)
    assert not marker.exists()
    assert result.dry_run is True
    assert result.returncode == 0
    assert result.stdout == ""
    assert "would run: " in caplog.text


def test_dry_run_log_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lvmvol")
    Runner(dry_run=True).run(["false", "a b"], mutating=True)
    assert [record.getMessage() for record in caplog.records] == ["would run: false 'a b'"]


def test_dry_run_records_history() -> None:
    runner = Runner(dry_run=True)
    runner.run(["false"], mutating=True)
    assert runner.history[-1].dry_run is True


def test_dry_run_runs_read_only(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    argv = python(f"open({str(marker)!r}, 'w').close(); print('read')")
    result = Runner(dry_run=True).run(argv, mutating=False)
    assert marker.exists()
    assert result.stdout == "read\n"
    assert result.dry_run is False


def test_mutating_runs_without_dry_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    Runner().run(python(f"open({str(marker)!r}, 'w').close()"), mutating=True)
    assert marker.exists()


def test_stdin_closed() -> None:
    result = Runner().run(python("import sys; print(repr(sys.stdin.read()))"), mutating=False)
    assert result.stdout == "''\n"


def test_stdin_closed_prompt_gets_eof() -> None:
    # A prompt such as lvm2's "[y/n]" reads end-of-file instead of waiting.
    code = "import sys\ntry:\n    input('Really? [y/n] ')\nexcept EOFError:\n    sys.exit(4)\n"
    with pytest.raises(CommandError) as raised:
        Runner().run(python(code), mutating=False, timeout=10)
    assert raised.value.returncode == 4


def test_input_text() -> None:
    result = Runner().run(python("import sys; print(sys.stdin.read().upper())"), mutating=False, input="abc")
    assert result.stdout == "ABC\n"


def test_input_bytes() -> None:
    code = "import sys; sys.stdout.write(sys.stdin.buffer.read().hex())"
    result = Runner().run(python(code), mutating=False, input=b"\x00\xff")
    assert result.stdout == "00ff"


def test_arguments_converted_to_text(tmp_path: Path) -> None:
    result = Runner().run(python("import sys; print(sys.argv[1])", tmp_path), mutating=False)
    assert result.stdout == f"{tmp_path}\n"


def test_non_utf8_output() -> None:
    result = Runner().run(python("import sys; sys.stdout.buffer.write(b'LABEL=caf\\xe9\\n')"), mutating=False)
    assert result.stdout.startswith("LABEL=caf")


def test_process_guard_blocks_lvm() -> None:
    # The unit tests' guard (conftest.py) stops every program but the harmless ones.
    with pytest.raises(AssertionError) as raised:
        Runner().run(["lvs", "--version"], mutating=False)
    assert "a unit test tried to start ['lvs', '--version']" in str(raised.value)


# run_streaming


def collect_lines() -> tuple[list[str], Callable[[str], None]]:
    lines: list[str] = []
    return lines, lines.append


def test_streaming_passes_lines_in_order() -> None:
    lines, on_line = collect_lines()
    code = "import sys, time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.05)"
    result = Runner().run_streaming(python(code), mutating=False, on_line=on_line)
    assert lines == ["0", "1", "2"]
    assert result.stdout == "0\n1\n2\n"
    assert result.returncode == 0


def test_streaming_line_arrives_before_exit() -> None:
    arrivals: list[float] = []
    code = "import time; print('early', flush=True); time.sleep(0.5)"
    started = time.monotonic()
    Runner().run_streaming(python(code), mutating=False, on_line=lambda line: arrivals.append(time.monotonic()))
    finished = time.monotonic()
    assert len(arrivals) == 1
    assert finished - arrivals[0] > 0.3
    assert arrivals[0] - started < finished - started


def test_streaming_keeps_stderr() -> None:
    code = "import sys; sys.stderr.write('warning\\n'); print('out')"
    result = Runner().run_streaming(python(code), mutating=False, on_line=lambda line: None)
    assert result.stderr == "warning\n"


def test_streaming_keeps_last_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lvmvol.runner.STREAMED_LINES_KEPT", 2)
    lines, on_line = collect_lines()
    result = Runner().run_streaming(python("print('a'); print('b'); print('c')"), mutating=False, on_line=on_line)
    assert lines == ["a", "b", "c"]
    assert result.stdout == "b\nc\n"


def test_streaming_input() -> None:
    lines, on_line = collect_lines()
    code = "import sys; print(len(sys.stdin.buffer.read()))"
    Runner().run_streaming(python(code), mutating=False, on_line=on_line, input=b"secret bytes")
    assert lines == ["12"]


def test_streaming_input_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lvmvol")
    code = "import sys; sys.stdin.read()"
    Runner().run_streaming(python(code), mutating=False, on_line=lambda line: None, input="passphrase")
    assert "passphrase" not in caplog.text


def test_streaming_stdin_closed_without_input() -> None:
    lines, on_line = collect_lines()
    Runner().run_streaming(python("import sys; print(repr(sys.stdin.read()))"), mutating=False, on_line=on_line)
    assert lines == ["''"]


def test_streaming_cwd(tmp_path: Path) -> None:
    lines, on_line = collect_lines()
    Runner().run_streaming(python("import os; print(os.getcwd())"), mutating=False, on_line=on_line, cwd=str(tmp_path))
    assert lines == [str(tmp_path)]


def test_streaming_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    lines, on_line = collect_lines()
    Runner().run_streaming(python("import os; print(os.environ['LC_ALL'])"), mutating=False, on_line=on_line)
    assert lines == ["C"]


def test_streaming_nonzero_exit() -> None:
    argv = python("import sys; print('partial'); sys.stderr.write('broken\\n'); sys.exit(4)")
    runner = Runner()
    with pytest.raises(CommandError) as raised:
        runner.run_streaming(argv, mutating=False, on_line=lambda line: None)
    error = raised.value
    assert error.returncode == 4
    assert error.stderr == "broken\n"
    assert str(error) == f"{PYTHON} failed with exit code 4: broken"
    assert runner.history[-1].returncode == 4


def test_streaming_ok_codes() -> None:
    result = Runner().run_streaming(["false"], mutating=False, on_line=lambda line: None, ok_codes=(0, 1))
    assert result.returncode == 1


def test_streaming_secret_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lvmvol")
    argv = python("import sys; sys.exit(1)", Secret("hunter2"))
    with pytest.raises(CommandError) as raised:
        Runner().run_streaming(argv, mutating=False, on_line=lambda line: None)
    assert raised.value.argv[-1] == "<redacted>"
    assert "hunter2" not in str(raised.value)
    assert "hunter2" not in caplog.text
    assert "<redacted>" in caplog.text


def test_streaming_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lvmvol")
    Runner().run_streaming(["true"], mutating=False, on_line=lambda line: None)
    messages = [(record.levelno, record.getMessage()) for record in caplog.records]
    assert messages[0] == (logging.INFO, "run: true")
    assert messages[1][0] == logging.DEBUG
    assert messages[1][1].startswith("exit 0 after ")


def test_streaming_dry_run_skips_mutating(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lvmvol")
    lines, on_line = collect_lines()
    result = Runner(dry_run=True).run_streaming(["false", Secret("key")], mutating=True, on_line=on_line)
    assert result.dry_run is True
    assert result.returncode == 0
    assert lines == []
    assert "would run: false '<redacted>'" in caplog.text


def test_streaming_timeout_sends_sigterm() -> None:
    # The child prints when SIGTERM arrives and exits cleanly, as cryptsetup reencrypt does.
    code = (
        "import signal, sys, time\n"
        "def stop(number, frame):\n"
        "    print('stopping', flush=True)\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('ready', flush=True)\n"
        "time.sleep(10)\n"
    )
    lines, on_line = collect_lines()
    started = time.monotonic()
    with pytest.raises(CommandTimeout) as raised:
        Runner().run_streaming(python(code), mutating=False, on_line=on_line, timeout=1.0)
    assert time.monotonic() - started < 5
    assert lines == ["ready", "stopping"]
    assert raised.value.exit_code == 6


def test_streaming_timeout_kills_after_grace() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('x', flush=True); time.sleep(10)"
    started = time.monotonic()
    with pytest.raises(CommandTimeout):
        Runner().run_streaming(python(code), mutating=False, on_line=lambda line: None, timeout=0.5, stop_grace=0.5)
    assert time.monotonic() - started < 5


def test_streaming_handler_error_stops_command() -> None:
    code = "import time\nfor i in range(100):\n    print(i, flush=True)\n    time.sleep(0.1)"

    def fail(line: str) -> None:
        raise ValueError(f"bad line {line}")

    started = time.monotonic()
    with pytest.raises(ValueError, match="bad line 0"):
        Runner().run_streaming(python(code), mutating=False, on_line=fail)
    assert time.monotonic() - started < 5


def test_streaming_missing_command() -> None:
    name = MISSING_PROGRAM_PREFIX + "cryptsetup"
    with pytest.raises(CommandError) as raised:
        Runner().run_streaming([name], mutating=False, on_line=lambda line: None)
    assert raised.value.returncode == 127
    assert f"{name}: command not found" in str(raised.value)


def test_streaming_child_gets_parent_death_signal() -> None:
    # /proc/PID/status does not show the parent-death signal, so the child
    # reads it back with prctl(PR_GET_PDEATHSIG).
    code = (
        "import ctypes, signal\n"
        "libc = ctypes.CDLL(None)\n"
        "value = ctypes.c_int()\n"
        "libc.prctl(2, ctypes.byref(value), 0, 0, 0)\n"
        "print(value.value == signal.SIGTERM)\n"
    )
    lines, on_line = collect_lines()
    Runner().run_streaming(python(code), mutating=False, on_line=on_line)
    assert lines == ["True"]


# Writes what it reads on standard input, and its session id, to the file in argv[1].
RECORD_STDIN = "import os, sys; data = sys.stdin.read(); open(sys.argv[1], 'w').write(f'{os.getsid(0)} {data!r}')"


def test_detached_gets_line_then_eof(tmp_path: Path) -> None:
    record = tmp_path / "record"
    detached = Runner().start_detached(python(RECORD_STDIN, str(record)), mutating=True)

    detached.finish("released", wait=30)

    session, data = record.read_text().split(" ", 1)
    assert data == "'released\\n'"
    assert int(session) != os.getsid(0)
    assert detached.process.returncode == 0


def test_detached_eof_without_line(tmp_path: Path) -> None:
    record = tmp_path / "record"
    detached = Runner().start_detached(python(RECORD_STDIN, str(record)), mutating=True)

    detached.finish(wait=30)

    assert record.read_text().endswith(" ''")


def test_detached_dry_run_starts_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lvmvol")
    assert Runner(dry_run=True).start_detached(["false"], mutating=True) is None
    assert "would run: false" in caplog.text


def test_detached_finish_after_exit() -> None:
    detached = Runner().start_detached(["true"], mutating=True)
    detached.process.wait(timeout=30)
    detached.finish("released")
    assert detached.process.returncode == 0


def test_detached_missing_command() -> None:
    with pytest.raises(CommandError) as raised:
        Runner().start_detached([MISSING_PROGRAM_PREFIX + "guard"], mutating=True)
    assert raised.value.returncode == 127
