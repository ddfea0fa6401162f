"""Whether a thin pool can grow before it fills: dmeventd monitoring, autoextend, VG free space.

dmeventd watches a monitored thin pool, logs warnings as it fills, and
extends it by ``thin_pool_autoextend_percent`` once its data or metadata use
passes ``thin_pool_autoextend_threshold``; a threshold of 100 turns
autoextend off. Both settings are in the ``activation`` section of lvm.conf.
"""

from __future__ import annotations

from dataclasses import dataclass

from lvmvol import lvm
from lvmvol.errors import CommandError
from lvmvol.ops.context import Context
from lvmvol.units import format_size, round_up

THRESHOLD_KEY = "activation/thin_pool_autoextend_threshold"
PERCENT_KEY = "activation/thin_pool_autoextend_percent"
MONITORING_KEY = "activation/monitoring"


@dataclass(frozen=True)
class Autoextend:
    """The autoextend settings of lvm.conf, with lvm2's defaults where a key is missing."""

    threshold: int = 100
    percent: int = 20
    monitoring: bool = True

    @property
    def enabled(self) -> bool:
        return self.monitoring and self.threshold < 100

    def step_bytes(self, pool_size: int, extent_size: int) -> int:
        """Return the bytes one autoextend adds to a pool of ``pool_size``."""
        return round_up(pool_size * self.percent // 100, extent_size or 1)

    def to_dict(self) -> dict:
        return {
            "autoextend_threshold": self.threshold,
            "autoextend_percent": self.percent,
            "autoextend_enabled": self.enabled,
        }

    def describe(self) -> str:
        if not self.monitoring:
            return "off (activation/monitoring = 0)"
        if self.threshold >= 100:
            return "off (threshold 100%)"
        return f"by {self.percent}% at {self.threshold}% full"


def _integer(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def read_autoextend(ctx: Context) -> Autoextend:
    """Return the effective autoextend settings from ``lvmconfig``."""
    values = lvm.config_values(ctx.runner, THRESHOLD_KEY, PERCENT_KEY, MONITORING_KEY)
    return Autoextend(
        threshold=_integer(values.get(THRESHOLD_KEY), 100),
        percent=_integer(values.get(PERCENT_KEY), 20),
        monitoring=_integer(values.get(MONITORING_KEY), 1) != 0,
    )


def ensure_monitored(ctx: Context, vg: str, name: str) -> tuple[bool, str | None]:
    """Register the pool with dmeventd unless it is monitored; return (changed, warning or None)."""
    if lvm.thin_pool_monitoring(ctx.runner).get((vg, name)) == "monitored":
        return False, None

    try:
        lvm.monitor(ctx.runner, vg, name)
    except CommandError as error:
        return False, (
            f"dmeventd cannot monitor pool {vg}/{name} ({error.message}), so nothing extends it "
            "or warns in the system log as it fills; check that dmeventd is installed and "
            "activation/monitoring is 1 in lvm.conf"
        )

    if ctx.dry_run:
        return True, None
    state = lvm.thin_pool_monitoring(ctx.runner).get((vg, name), "")
    if state != "monitored":
        return True, (
            f"pool {vg}/{name} is {state or 'not'} monitored by dmeventd after 'lvchange --monitor y'; "
            "check that dmeventd runs"
        )
    return True, None


def growth_warning(autoextend: Autoextend, pool_name: str, vg: str, pool_size: int, vg_free: int, extent_size: int) -> str | None:
    """Return a warning when the VG has no room for the pool to grow into, else None."""
    needed = autoextend.step_bytes(pool_size, extent_size) if autoextend.enabled else max(extent_size, 1)
    if vg_free >= needed:
        return None
    return (
        f"volume group {vg} has {format_size(vg_free)} free, so pool {pool_name} cannot grow "
        f"(autoextend {autoextend.describe()} needs {format_size(needed)}); "
        f"add a device with 'vgextend {vg} DEVICE' before the pool fills"
    )


@dataclass(frozen=True)
class PoolHealth:
    """Growth state of a pool: its dmeventd state, the autoextend settings and any warning."""

    monitoring: str
    autoextend: Autoextend
    warning: str | None

    def to_dict(self) -> dict:
        return {"monitoring": self.monitoring or None, **self.autoextend.to_dict(), "growth_warning": self.warning}


def pool_health(ctx: Context, pools: list) -> list[PoolHealth]:
    """Return the health of each of ``pools`` (inventory pools), in the same order."""
    if not pools:
        return []
    states = lvm.thin_pool_monitoring(ctx.runner)
    autoextend = read_autoextend(ctx)
    return [
        PoolHealth(
            states.get((pool.vg, pool.name), ""),
            autoextend,
            growth_warning(autoextend, pool.name, pool.vg, pool.lv.size, pool.lv.vg_free, pool.lv.extent_size),
        )
        for pool in pools
    ]
