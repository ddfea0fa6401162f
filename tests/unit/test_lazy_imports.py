"""Start-up cost: which modules a command line imports, checked in a fresh interpreter.

Each case runs ``lvmvol ARGS`` in a new Python process (``sys.executable``,
no external programs) and lists the modules loaded when it exits. A module
that a command does not use costs start-up time on every call, which is
seconds per import under the VM's software emulation.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Runs lvmvol's entry point, then prints the loaded module names as JSON on
# stderr, also when the command exits through SystemExit.
PROBE = """
import json, sys
sys.argv = ["lvmvol", *sys.argv[1:]]
from lvmvol.cli import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)))
"""

# The same through the installed script's entry point, lvmvol.__main__:main.
ENTRY_PROBE = """
import json, sys
sys.argv = ["lvmvol", *sys.argv[1:]]
from lvmvol.__main__ import main
main()
print("MODULES " + json.dumps(sorted(sys.modules)))
"""

NEVER_FOR_HELP = ("rich", "pyudev", "lvmvol.crypt", "lvmvol.lvm", "lvmvol.ops.volumes", "lvmvol.ops.encrypt")


def loaded_modules(*args: str) -> set[str]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60, check=False
    )
    marker = completed.stderr.rpartition("MODULES ")[2]
    return set(json.loads(marker))


def imported(modules: set[str], prefix: str) -> list[str]:
    return sorted(name for name in modules if name == prefix or name.startswith(prefix + "."))


def test_version_imports_no_commands() -> None:
    modules = loaded_modules("--version")

    assert imported(modules, "lvmvol") == ["lvmvol", "lvmvol.cli", "lvmvol.errors"]
    assert imported(modules, "rich") == []
    assert imported(modules, "pyudev") == []


@pytest.mark.parametrize("args", [("--help",), ("volume", "ls", "--help"), ("volume", "create", "--help")])
def test_help_imports_no_unused_module(args: tuple[str, ...]) -> None:
    modules = loaded_modules(*args)

    for prefix in NEVER_FOR_HELP:
        assert imported(modules, prefix) == [], f"lvmvol {' '.join(args)} imports {prefix}"


def test_volume_ls_help_imports_no_operations() -> None:
    modules = loaded_modules("volume", "ls", "--help")

    assert imported(modules, "lvmvol.ops.inventory") == []
    assert imported(modules, "lvmvol.cli.pool") == []


def test_version_fast_path_matches_click() -> None:
    from click.testing import CliRunner

    from lvmvol.__main__ import VERSION_LINE
    from lvmvol.cli import cli

    result = CliRunner().invoke(cli, ["--version"], prog_name="lvmvol")

    assert result.exit_code == 0
    assert result.stdout == VERSION_LINE + "\n"


def test_version_fast_path_imports_no_click() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", ENTRY_PROBE, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    stdout, _, modules = completed.stdout.partition("MODULES ")

    assert completed.returncode == 0
    assert stdout.startswith("lvmvol, version ")
    assert imported(set(json.loads(modules)), "click") == []
    assert imported(set(json.loads(modules)), "lvmvol") == ["lvmvol", "lvmvol.__main__"]


# Modules that only some operations need: key generation (secrets), device
# checksums for in-place encryption (hashlib) and the mount syscall helpers
# (ctypes). The everyday operations must not pay for them at import time.
ONLY_FOR_SOME = ("hashlib", "secrets", "ctypes")


@pytest.mark.parametrize("module", ["lvmvol.ops.volumes", "lvmvol.ops.snapshots", "lvmvol.ops.inventory"])
def test_everyday_operations_import_no_rare_helpers(module: str) -> None:
    modules = modules_after(f"import {module}")

    for name in ONLY_FOR_SOME:
        assert imported(modules, name) == [], f"import {module} loads {name}"


# Modules that a listing does not use: pathlib (with urllib and fnmatch),
# decimal for parsing sizes, tomllib for a config file that may not exist and
# Click's completion support. Each one is several module files to read.
NOT_FOR_LISTING = ("pathlib", "decimal", "tomllib", "tomli", "click.shell_completion")


@pytest.mark.parametrize(
    "module", ["lvmvol.cli.volume", "lvmvol.cli.pool", "lvmvol.ops.inventory", "lvmvol.cli.render", "lvmvol.config"]
)
def test_listing_imports_no_unused_stdlib(module: str) -> None:
    # An editable install's path hook loads pathlib before any lvmvol code, so that much is not lvmvol's.
    at_start = modules_after("pass")
    modules = modules_after(f"import {module}") - at_start

    for name in NOT_FOR_LISTING:
        assert imported(modules, name) == [], f"import {module} loads {name}"


def modules_after(statement: str) -> set[str]:
    probe = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(completed.stdout))
