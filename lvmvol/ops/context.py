"""What every operation receives: the configuration and the command runner."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

from lvmvol.config import Config
from lvmvol.runner import Runner


@dataclass
class Context:
    config: Config = field(default_factory=Config)
    runner: Runner = field(default_factory=Runner)

    @property
    def dry_run(self) -> bool:
        return self.runner.dry_run


@dataclass
class Outcome:
    """What a mutating operation did, for the CLI to report."""

    name: str
    changed: bool
    # Extra facts for --json and the human-readable report, such as the
    # mountpoint or the requested and actual sizes.
    details: dict = field(default_factory=dict)
    # Notes worth showing to the administrator (not errors).
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "changed": self.changed, **self.details}


def wait_for_device(ctx: Context, path: str, present: bool = True) -> None:
    """Wait for a device node through udev; in a dry run there is nothing to wait for."""
    if ctx.dry_run:
        return
    from lvmvol.udev import wait_for_node

    wait_for_node(path, ctx.config.device_timeout, present=present)


# Test-only fault injection: "OPERATION:STEP[,OPERATION:STEP...]" names the
# steps before which the process kills itself with SIGKILL, the way a power
# cut or an OOM kill would stop it. The VM suite uses it to prove that the
# same command run again finishes an operation killed at any step.
FAULT_VARIABLE = "LVMVOL_FAULT_BEFORE"


def before_step(operation: str, step: str) -> None:
    """Mark the start of ``step`` of ``operation``; die here with SIGKILL when the fault variable names it.

    An operation calls this before each step that changes the system, with
    the step names its module lists (for example ``restore.STEPS``).
    Without the variable it does nothing.
    """
    requested = os.environ.get(FAULT_VARIABLE)
    if requested and f"{operation}:{step}" in requested.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
