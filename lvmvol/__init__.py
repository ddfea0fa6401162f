"""lvmvol: data volumes on LVM thin pools, with snapshots and LUKS2 encryption."""

__version__ = "0.1.0"
