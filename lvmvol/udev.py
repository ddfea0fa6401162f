"""Waiting for device nodes through udev events.

After lvcreate, lvchange --activate or cryptsetup open, the node under /dev
can appear a moment after the command returns. lvmvol listens for udev block
events instead of sleeping: it subscribes first, then checks the path, then
re-checks after each event until the deadline.
"""

from __future__ import annotations

import logging
import os
import time

from lvmvol.errors import DeviceTimeout

log = logging.getLogger("lvmvol.udev")


def _block_monitor():
    import pyudev  # imported here: only commands that create devices pay for it

    context = pyudev.Context()
    monitor = pyudev.Monitor.from_netlink(context)
    monitor.filter_by("block")
    monitor.start()
    return monitor


def wait_for_node(path: str, timeout: float, present: bool = True) -> float:
    """Wait until ``path`` exists (or, with ``present=False``, is gone); return the seconds waited.

    Raises ``DeviceTimeout`` naming the path when ``timeout`` seconds pass first.
    """
    started = time.monotonic()
    if os.path.exists(path) == present:
        log.debug("waited 0.000 s for %s (no udev event needed)", path)
        return 0.0

    monitor = _block_monitor()
    deadline = started + timeout
    while os.path.exists(path) != present:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            state = "appear" if present else "go away"
            raise DeviceTimeout(
                f"device node {path} did not {state} within {timeout:g} s",
                "check that systemd-udevd is running (udevadm monitor shows its events), "
                "or raise device_timeout in the config file",
            )
        # poll() returns on any block event; the loop re-checks the path.
        monitor.poll(timeout=remaining)
    waited = time.monotonic() - started
    log.debug("waited %.3f s for %s", waited, path)
    return waited
