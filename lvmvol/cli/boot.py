"""``lvmvol activate`` and ``lvmvol install-units``: bringing volumes back at boot."""

from __future__ import annotations

import click

from lvmvol.cli.common import json_option, operation_context, print_json, report
from lvmvol.errors import PARTIAL_ACTIVATION_EXIT
from lvmvol.ops import units


@click.command()
@json_option
@click.pass_context
def activate(click_ctx: click.Context, as_json: bool) -> None:
    """Bring back what lvmvol manages after a boot; safe to run at any time.

    Attaches loop-backed pools to their files, activates thin pools and
    volumes, and mounts the volumes mounted with 'volume mount --persist'
    (opening encrypted ones with their recorded key files). Other encrypted
    volumes stay closed. Exits 8 when something did not come back; the rest
    is brought back anyway.

    \b
    Example:
      $ lvmvol activate
    """
    from lvmvol.ops import activation

    result = activation.activate_all(operation_context(click_ctx))
    if as_json:
        print_json(result.to_dict())
    else:
        for item in result.items:
            if item.ok:
                state = "activated" if item.changed else "unchanged"
                suffix = f" ({item.detail})" if item.detail else ""
                click.echo(f"{item.kind} {item.name}: {state}{suffix}")
    for item in result.items:
        if not item.ok:
            click.echo(f"lvmvol: error: {item.kind} {item.name}: {item.error}", err=True)
    if not as_json:
        click.echo(f"lvmvol: activate: {'changed' if result.changed else 'unchanged'}", err=True)
    if not result.ok:
        click_ctx.exit(PARTIAL_ACTIVATION_EXIT)


@click.command("install-units")
@click.option(
    "--dir",
    "directory",
    default=units.DEFAULT_UNIT_DIR,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory to write the systemd units to.",
)
@json_option
@click.pass_context
def install_units(click_ctx: click.Context, directory: str, as_json: bool) -> None:
    """Write lvmvol's systemd units and print their paths.

    The units are lvmvol-activate.service, and lvmvol-docker.socket with
    lvmvol-docker.service for the Docker volume plugin. systemd reads them
    only after 'systemctl daemon-reload'; 'systemctl enable
    lvmvol-activate.service' makes it run at boot, and 'systemctl enable
    --now lvmvol-docker.socket' serves Docker.

    \b
    Example:
      $ lvmvol install-units
      $ systemctl daemon-reload && systemctl enable lvmvol-activate.service
    """
    outcome = units.install_units(operation_context(click_ctx), directory)
    report(outcome, as_json, "install-units", line="\n".join(outcome.details["units"]))
    if not as_json:
        click.echo(
            "lvmvol: note: run 'systemctl daemon-reload' and "
            "'systemctl enable lvmvol-activate.service' to run it at boot",
            err=True,
        )
