"""The README's "First commands" and the user guide, run as a new user would type them.

The test takes every ```sh block from the README's "First commands"
section and from docs/guide.md, in order, and runs each with bash. It
rewrites only the paths that must stay inside its scratch directory: the
pool's backing file, the key directory on its RAM disk, the mount root
(through a config file in LVMVOL_CONFIG) and the extra mountpoints under
/mnt, which is read-only in the VM. A block that exits non-zero fails the
test with its text and output.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from .helpers import LoopDevice, release_loop_device, run_command

REPOSITORY = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
# Seconds one block may take under software emulation; the longest starts
# lvmvol five times and makes an encrypted filesystem.
BLOCK_TIMEOUT = 600


def readme_first_commands() -> str:
    text = (REPOSITORY / "README.md").read_text()
    start = text.index("## First commands")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def shell_blocks(markdown: str) -> list[str]:
    return FENCE.findall(markdown)


def rewrite(block: str, replacements: dict[str, str]) -> str:
    for documented, scratch in replacements.items():
        block = block.replace(documented, scratch)
    return block


def test_readme_and_guide_commands_run(vm_scratch: Path, tmp_path: Path, unique_name) -> None:
    work = vm_scratch / unique_name("newcomer")
    work.mkdir()
    pool_file = work / "pool.img"
    keys = work / "keys"
    mount_root = work / "volumes"
    vg = unique_name("vg")
    config = tmp_path / "lvmvol.toml"
    config.write_text(
        f'vg = "{vg}"\nmount_root = "{mount_root}"\nloop_file_list = "{work}/loop-files"\n'
    )
    replacements = {
        "/var/lib/lvmvol-pool.img": str(pool_file),
        "/var/lib/lvmvol/": f"{mount_root}/",
        "/run/keys": str(keys),
        "/mnt/": f"{work}/extra-mounts/",
    }
    blocks = shell_blocks(readme_first_commands()) + shell_blocks((REPOSITORY / "docs" / "guide.md").read_text())
    assert len(blocks) >= 10, "the README's First commands or the guide lost their sh blocks"
    # The lvmvol script on PATH may belong to another checkout that shares the
    # virtualenv, so the blocks get this checkout's package first.
    environment = {"LVMVOL_CONFIG": str(config), "PYTHONPATH": str(REPOSITORY)}

    try:
        for number, block in enumerate(blocks, start=1):
            script = rewrite(block, replacements)
            result = run_command(
                ["bash", "-e", "-o", "pipefail", "-c", script],
                check=False,
                env=environment,
                timeout=BLOCK_TIMEOUT,
            )
            assert result.returncode == 0, (
                f"documented block {number} failed with exit code {result.returncode}:\n{script}\n"
                f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
            )
        pool_file_left = pool_file.exists()
    finally:
        _clean_up(pool_file, keys)

    assert not pool_file_left, "the guide's last step, pool rm --force, left the pool's file"


def _clean_up(pool_file: Path, keys: Path) -> None:
    """Remove what a failed run left: the VG on the pool's loop device, the loop device, the RAM disks."""
    if pool_file.exists():
        devices = run_command(["losetup", "--noheadings", "-O", "NAME", "-j", str(pool_file)], check=False)
        for device in devices.stdout.split():
            release_loop_device(LoopDevice(device, pool_file))
    # The README and the guide may each have mounted a tmpfs on the key directory.
    while subprocess.run(["mountpoint", "-q", str(keys)]).returncode == 0:
        run_command(["umount", str(keys)])
