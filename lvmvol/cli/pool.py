"""``lvmvol pool``: initialise, list and remove thin pools."""

from __future__ import annotations

import click

from lvmvol.cli.common import (
    ReadOnlyCommand,
    confirmer,
    json_option,
    operation_context,
    output_format,
    output_option,
    print_json,
    print_names,
    report,
)
from lvmvol.cli.completion import complete_free_device, complete_pool
from lvmvol.errors import InvalidInput
from lvmvol.units import parse_size, parse_size_change


@click.group()
def pool() -> None:
    """Create, list, grow and remove thin pools.

    \b
    Example:
      $ lvmvol pool init /dev/sdb
      $ lvmvol pool ls
    """


@pool.command("init")
@click.argument("devices", nargs=-1, metavar="DEVICE...", shell_complete=complete_free_device)
@click.option("--file", "file_path", type=click.Path(dir_okay=False), help="Back the pool with this sparse file, attached as a loop device, instead of DEVICE.")
@click.option("--file-size", help="Size of the --file, such as 10G (binary) or 10GB (decimal).")
@click.option("--vg", help="Volume group to create or reuse (default: vg in the config file, else 'lvmvol').")
@click.option("--name", "pool_name", help="Name of the thin pool (default: pool in the config file, else 'pool').")
@click.option("--size", help="Data size of the pool, such as 50G, or a percentage of the volume group such as 80%. Default: all free space.")
@click.option("--force", is_flag=True, help="Wipe existing signatures (filesystem, partition table) on the devices.")
@click.option("-y", "--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation (with --force).")
@json_option
@click.pass_context
def init(
    click_ctx: click.Context,
    devices: tuple[str, ...],
    file_path: str | None,
    file_size: str | None,
    vg: str | None,
    pool_name: str | None,
    size: str | None,
    force: bool,
    assume_yes: bool,
    as_json: bool,
) -> None:
    """Make DEVICE... (or a loop-backed --file) into a volume group with a thin pool.

    Running the same command again changes nothing. With another --name it
    adds a second thin pool to the same volume group.

    \b
    Example:
      $ lvmvol pool init /dev/sdb
      $ lvmvol pool init --file /var/lib/lvmvol-pool.img --file-size 20G
    """
    from lvmvol.ops import pools

    request = pools.PoolSize.parse(size)
    if file_path and devices:
        raise InvalidInput("pass either DEVICE... or --file, not both")
    if file_path and not file_size:
        raise InvalidInput("--file needs --file-size", "for example: --file-size 10G")
    if file_size and not file_path:
        raise InvalidInput("--file-size needs --file PATH")
    if not file_path and not devices:
        raise InvalidInput("no device given", "pass DEVICE..., or --file PATH --file-size SIZE")
    parsed_file_size = parse_size(file_size, "--file-size") if file_size else None

    ctx = operation_context(click_ctx)
    default_vg, _, default_name = ctx.config.pool.rpartition("/")
    vg = vg or default_vg or ctx.config.vg
    pool_name = pool_name or default_name or "pool"
    confirm = confirmer(assume_yes)

    if file_path:
        outcome = pools.init_file_pool(
            ctx, file_path, parsed_file_size, vg, pool_name, request, force, confirm
        )
    else:
        outcome = pools.init_pool(ctx, list(devices), vg, pool_name, request, force, confirm)
    report(outcome, as_json, "pool", line=f"{vg}/{outcome.name}")


@pool.command("extend")
@click.argument("pool_spec", metavar="POOL", shell_complete=complete_pool)
@click.argument("devices", nargs=-1, metavar="[DEVICE...]", shell_complete=complete_free_device)
@click.option("--size", help="New data size of the pool, such as 50G, or +SIZE to add. Default: all free space of the volume group.")
@click.option("--force", is_flag=True, help="Wipe existing signatures (filesystem, partition table) on the devices.")
@click.option("-y", "--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation (with --force).")
@json_option
@click.pass_context
def extend(
    click_ctx: click.Context,
    pool_spec: str,
    devices: tuple[str, ...],
    size: str | None,
    force: bool,
    assume_yes: bool,
    as_json: bool,
) -> None:
    """Grow thin pool POOL, adding DEVICE... to its volume group first.

    A loop-backed pool grows its backing file instead, by what --size needs.
    The pool's metadata grows with its data. Devices get the same checks as
    in 'pool init'.

    \b
    Example:
      $ lvmvol pool extend lvmvol/pool /dev/sdc
      $ lvmvol pool extend pool --size +10G
    """
    from lvmvol.ops import pool_extend

    amount, relative = parse_size_change(size) if size else (None, False)
    outcome = pool_extend.extend_pool(
        operation_context(click_ctx), pool_spec, list(devices), amount, relative, force, confirmer(assume_yes)
    )
    report(outcome, as_json, "pool", line=f"{outcome.details['vg']}/{outcome.name}")


@pool.command("ls", cls=ReadOnlyCommand)
@output_option
@json_option
@click.pass_context
def list_pools(click_ctx: click.Context, output: str | None, as_json: bool) -> None:
    """List the thin pools lvmvol manages, with how full they are.

    \b
    Example:
      $ lvmvol pool ls
      $ lvmvol pool ls -o name
    """
    from lvmvol.cli.render import pool_table
    from lvmvol.ops import pool_health
    from lvmvol.ops.inventory import read_inventory

    output = output_format(output, as_json)
    ctx = operation_context(click_ctx)
    inventory = read_inventory(ctx)
    if output == "name":
        print_names(inventory.pools)
        return
    health = pool_health.pool_health(ctx, inventory.pools)
    if output == "json":
        print_json([{**pool.to_dict(), **state.to_dict()} for pool, state in zip(inventory.pools, health)])
        return
    pool_table(inventory.pools, health)
    for state in health:
        if state.warning:
            click.echo(f"lvmvol: warning: {state.warning}", err=True)


@pool.command("rm")
@click.argument("pool_spec", metavar="POOL", shell_complete=complete_pool)
@click.option("--force", is_flag=True, help="Also remove the volumes and snapshots in the pool, unmounting them first.")
@click.option("-y", "--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation (with --force).")
@json_option
@click.pass_context
def remove(click_ctx: click.Context, pool_spec: str, force: bool, assume_yes: bool, as_json: bool) -> None:
    """Remove thin pool POOL (VG/NAME or NAME). A pool that holds volumes is refused unless --force.

    When the pool was the last LV of a volume group that 'pool init'
    created, the volume group, its PV labels and its loop-backed file go too.

    \b
    Example:
      $ lvmvol pool rm lvmvol/pool
    """
    from lvmvol.ops import pool_removal

    outcome = pool_removal.remove_pool(operation_context(click_ctx), pool_spec, force, confirmer(assume_yes))
    report(outcome, as_json, "pool")
