"""Which Docker mount IDs use which volume, kept in a file under /run.

Docker sends one Mount request per container that uses a volume, each with
its own ID, and an Unmount with the same ID when the container stops. A
volume stays mounted until its last ID has unmounted. The IDs are saved
after each change (written to a temporary file, then renamed over the old
one), so a restarted server reloads them. The file lives under /run,
a tmpfs, so a host reboot clears it together with the mounts it describes.
Whether a volume is mounted always comes from the kernel's mount table:
``reconcile`` drops the IDs of volumes that are not mounted.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from typing import Iterable

from lvmvol.docker import DEFAULT_STATE_DIR

log = logging.getLogger("lvmvol.docker")

STATE_FILE_NAME = "docker-mounts.json"


class MountIds:
    """The set of mount IDs per volume name, saved to ``state_dir/docker-mounts.json``."""

    def __init__(self, state_dir: str = DEFAULT_STATE_DIR):
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, STATE_FILE_NAME)
        self._ids: dict[str, set[str]] = {}
        # Mount and Unmount also hold the command lock; this lock keeps the
        # read-only requests from seeing a dictionary in mid-change.
        self._guard = threading.Lock()

    def load(self) -> None:
        """Read the saved IDs; a missing file means none, an unreadable one is logged and ignored."""
        try:
            with open(self.path, encoding="utf-8") as handle:
                document = json.load(handle)
            ids = {str(name): {str(item) for item in items} for name, items in document["volumes"].items()}
        except FileNotFoundError:
            ids = {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("ignoring the unreadable mount ID file %s: %s", self.path, error)
            ids = {}
        with self._guard:
            self._ids = {name: items for name, items in ids.items() if items}

    def reconcile(self, mounted_volumes: Iterable[str]) -> list[str]:
        """Drop the IDs of every volume not in ``mounted_volumes``, save, and return the names dropped."""
        mounted = set(mounted_volumes)
        with self._guard:
            dropped = sorted(name for name in self._ids if name not in mounted)
            for name in dropped:
                del self._ids[name]
        if dropped:
            self.save()
        return dropped

    def ids_of(self, name: str) -> set[str]:
        with self._guard:
            return set(self._ids.get(name, ()))

    def add(self, name: str, mount_id: str) -> None:
        with self._guard:
            self._ids.setdefault(name, set()).add(mount_id)
        self.save()

    def remove(self, name: str, mount_id: str) -> set[str]:
        """Remove ``mount_id`` from ``name``'s IDs, save, and return the IDs that remain."""
        with self._guard:
            remaining = self._ids.get(name, set())
            remaining.discard(mount_id)
            if not remaining:
                self._ids.pop(name, None)
            result = set(remaining)
        self.save()
        return result

    def forget(self, name: str) -> None:
        with self._guard:
            found = self._ids.pop(name, None)
        if found is not None:
            self.save()

    def save(self) -> None:
        """Write the IDs atomically: a crash leaves the old file or the new one, never half of one."""
        with self._guard:
            document = {"volumes": {name: sorted(items) for name, items in sorted(self._ids.items())}}
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=".docker-mounts.", dir=self.state_dir)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(document, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass
            raise
