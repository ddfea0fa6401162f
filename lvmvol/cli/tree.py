"""``lvmvol tree``: pools, volumes, snapshots under their origins, and mountpoints."""

from __future__ import annotations

import click

from lvmvol.cli.common import ReadOnlyCommand, json_option, operation_context, print_json


@click.command(cls=ReadOnlyCommand)
@json_option
@click.pass_context
def tree(click_ctx: click.Context, as_json: bool) -> None:
    """Show pools, volumes and snapshots as a tree, like lsblk.

    \b
    Example:
      $ lvmvol tree
    """
    from lvmvol.cli.render import inventory_tree
    from lvmvol.ops.inventory import read_inventory

    inventory = read_inventory(operation_context(click_ctx))
    if as_json:
        print_json(
            [
                {
                    **pool.to_dict(),
                    "children": [
                        volume.to_dict()
                        for volume in inventory.volumes
                        if volume.vg == pool.vg and volume.lv.pool == pool.name
                    ],
                }
                for pool in inventory.pools
            ]
        )
        return
    inventory_tree(inventory)
