"""volume resize against real lvm2, cryptsetup, resize2fs and xfs_growfs, mounted and unmounted."""

from __future__ import annotations

import glob
import hashlib
import os

import pytest

from lvmvol.names import crypt_mapping_name

from .lifecycle_fixtures import block_size, lv_size, statvfs_bytes
from .lvmvol_fixtures import big_thin_pool, json_output, mount_root  # noqa: F401

MiB = 1024 * 1024
LUKS2_HEADER = 16 * MiB


def write_random_file(directory: str) -> str:
    """Write 4 MiB of random data to ``directory/data.bin``, fsync it, and return its SHA-256."""
    content = os.urandom(4 * MiB)
    with open(os.path.join(directory, "data.bin"), "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    return hashlib.sha256(content).hexdigest()


def file_checksum(directory: str) -> str:
    with open(os.path.join(directory, "data.bin"), "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


@pytest.mark.parametrize(
    ("filesystem", "encrypted", "sizes"),
    [
        ("ext4", False, (64, 32, 128)),
        ("xfs", False, (320, 64, 448)),
        ("ext4", True, (64, 32, 128)),
        ("xfs", True, (336, 64, 448)),
    ],
    ids=["ext4", "xfs", "luks-ext4", "luks-xfs"],
)
def test_resize_grows_every_layer(filesystem, encrypted, sizes, big_thin_pool, lvmvol, lvmvol_config, tmp_path):
    initial, added, final = (size * MiB for size in sizes)
    # mkfs.xfs zeroes a 64 MiB log through dm-crypt, which can take minutes under emulation (an estimate).
    lvmvol_config["command_timeout"] = 600
    vg = big_thin_pool.vg
    create = ["volume", "create", "grow", "--size", f"{initial}B", "--fs", filesystem]
    if encrypted:
        # A generated key: its PBKDF2 key slot opens in a moment, where
        # argon2id takes seconds under emulation.
        lvmvol_config["key_dir"] = str(tmp_path / "keys")
        create.append("--luks")
    lvmvol(*create)
    header = LUKS2_HEADER if encrypted else 0
    mapping = f"/dev/mapper/{crypt_mapping_name(vg, 'grow')}"
    mountpoint = lvmvol("volume", "mount", "grow").stdout.strip()
    checksum = write_random_file(mountpoint)
    df_before = statvfs_bytes(mountpoint)

    mounted = json_output(lvmvol("volume", "resize", "grow", "--size", f"+{added // MiB}M", "--json"))

    grown = initial + added
    assert mounted["changed"] is True
    assert lv_size(vg, "grow") == grown
    assert mounted["layers"]["lv_bytes"] == grown
    if encrypted:
        assert block_size(mapping) == grown - header
        assert mounted["layers"]["mapping_bytes"] == grown - header
    # df shows most of the added space; the rest holds the filesystem's own metadata.
    assert statvfs_bytes(mountpoint) - df_before > added * 3 // 4
    assert file_checksum(mountpoint) == checksum

    again = json_output(lvmvol("volume", "resize", "grow", "--size", f"{grown}B", "--json"))
    assert again["changed"] is False

    lvmvol("volume", "umount", "grow")
    df_mounted = statvfs_bytes(lvmvol("volume", "mount", "grow").stdout.strip())
    lvmvol("volume", "umount", "grow")

    unmounted = json_output(lvmvol("volume", "resize", "grow", "--size", f"{final // MiB}M", "--json"))

    assert unmounted["changed"] is True
    assert lv_size(vg, "grow") == final
    # The private mount is gone and the mapping closed, as before the resize.
    assert glob.glob("/tmp/lvmvol-resize-*") == []
    assert not os.path.exists(mapping)
    mountpoint = lvmvol("volume", "mount", "grow").stdout.strip()
    if encrypted:
        assert block_size(mapping) == final - header
    assert statvfs_bytes(mountpoint) - df_mounted > (final - grown) * 3 // 4
    assert file_checksum(mountpoint) == checksum


def test_resize_refuses_shrink(big_thin_pool, lvmvol):
    lvmvol("volume", "create", "keep", "--size", "64M")

    result = lvmvol("volume", "resize", "keep", "--size", "32M", check=False)

    assert result.returncode == 2
    assert "cannot shrink" in result.stderr
    assert lv_size(big_thin_pool.vg, "keep") == 64 * MiB
    # A size that rounds up to the current extents is no change.
    same = json_output(lvmvol("volume", "resize", "keep", "--size", f"{64 * MiB - 4096}B", "--json"))
    assert same["changed"] is False
