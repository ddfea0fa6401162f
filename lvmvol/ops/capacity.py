"""The over-commit guard: whether a thin pool may take more virtual size.

A thin pool allocates blocks only when volumes are written, so the thin
volumes and snapshots in it can add up to more than it holds. When the pool
runs out, dm-thin queues and then fails writes, and the filesystems on it
are damaged. lvm2 only warns about over-commitment, so lvmvol checks before
every command that adds virtual size to a pool: volume and snapshot
creation, and growing a volume.
"""

from __future__ import annotations

from lvmvol.errors import Conflict
from lvmvol.ops.context import Context
from lvmvol.ops.inventory import Pool
from lvmvol.units import format_size


def check_pool_capacity(
    ctx: Context, pool: Pool, extra_bytes: int, allow_overcommit: bool, what: str
) -> str | None:
    """Check that ``pool`` may take ``extra_bytes`` more virtual size for ``what``.

    ``what`` names the request in messages, such as "a 1.0 GiB volume".
    Raises ``Conflict`` when the pool's data or metadata use is at or past
    its threshold, with or without ``allow_overcommit``, and when the
    committed virtual size with ``extra_bytes`` added would pass
    ``overcommit_ratio`` times the pool's data size, unless
    ``allow_overcommit``. Returns a note for the administrator when the
    request is allowed past the ratio, else None.
    """
    problems = pool.usage_past_threshold()
    if problems:
        raise Conflict(
            f"cannot add {what} to thin pool {pool.full_name}: it is past its threshold "
            f"({', '.join(problems)}), with {_usage(pool)}",
            f"extend the pool with 'lvextend --size +SIZE {pool.full_name}' "
            "(--poolmetadatasize +SIZE for metadata), or remove snapshots and volumes you no "
            "longer need with 'lvmvol volume rm NAME'; pool_data_threshold and "
            "pool_metadata_threshold in the config file set the thresholds",
        )

    committed = pool.committed_bytes + extra_bytes
    ratio = committed / pool.lv.size if pool.lv.size else float("inf")
    limit = ctx.config.overcommit_ratio
    if ratio <= limit:
        return None
    summary = (
        f"its thin volumes and snapshots would total {format_size(committed)}, "
        f"{ratio:.1f} times its {format_size(pool.lv.size)} of data space"
    )
    if not allow_overcommit:
        raise Conflict(
            f"cannot add {what} to thin pool {pool.full_name}: {summary}, "
            f"and overcommit_ratio allows {limit:g}",
            "extend the pool, raise overcommit_ratio in the config file, or pass "
            "--allow-overcommit and watch the pool's use with 'lvmvol pool ls'",
        )
    return (
        f"thin pool {pool.full_name} is over-committed: {summary} "
        f"(overcommit_ratio {limit:g}), with {_usage(pool)}"
    )


def _usage(pool: Pool) -> str:
    return f"data {_percent(pool.lv.data_percent)} and metadata {_percent(pool.lv.metadata_percent)} in use"


def _percent(value: float | None) -> str:
    # lvm2 reports no use for an inactive pool.
    return "unknown" if value is None else f"{value:.1f}%"
