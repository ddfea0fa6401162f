"""The ``lvmvol`` command group: global options, logging, and the one error handler.

This package is the only code that prints. Each error lvmvol raises on
purpose becomes one line on stderr and the exit code of its kind (see
docs/exit-codes.md); a traceback appears only with ``--debug``.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from lvmvol import __version__
from lvmvol.errors import LvmvolError


class LazyGroup(click.Group):
    """A command group whose subcommands are imported only when a command line names one.

    ``lazy_commands`` maps each command name to ``"module:attribute"``. So
    ``lvmvol --version`` imports none of the command modules, and ``lvmvol
    volume ls`` imports only the ``volume`` module; ``lvmvol --help`` and
    shell completion still import all of them to list their help.
    """

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            module_name, _, attribute = self.lazy_commands[cmd_name].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
            self.add_command(command, cmd_name)
        return command


class LvmvolGroup(LazyGroup):
    """A command group that turns every expected error into one line on stderr and an exit code."""

    def main(self, *args, **kwargs):
        """Run the command; print usage errors as one line instead of Click's usage block."""
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else "lvmvol"
            click.echo(f"lvmvol: error: {error.format_message()} (see '{where} --help')", err=True)
            sys.exit(error.exit_code)
        except click.ClickException as error:
            click.echo(f"lvmvol: error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("lvmvol: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LvmvolError as error:
            if ctx.obj is not None and ctx.obj.get("debug"):
                raise
            click.echo(f"lvmvol: error: {error}", err=True)
            ctx.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("lvmvol: interrupted", err=True)
            ctx.exit(130)


class _CommandLineFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"lvmvol: {record.getMessage()}"


def _configure_logging(verbose: bool, debug: bool, dry_run: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_CommandLineFormatter())
    root = logging.getLogger("lvmvol")
    root.handlers[:] = [handler]
    root.propagate = False
    if debug:
        root.setLevel(logging.DEBUG)
    elif verbose or dry_run:
        root.setLevel(logging.INFO)
    else:
        root.setLevel(logging.WARNING)


@click.group(
    cls=LvmvolGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    lazy_commands={
        "pool": "lvmvol.cli.pool:pool",
        "volume": "lvmvol.cli.volume:volume",
        "snapshot": "lvmvol.cli.volume:snapshot_command",
        "tree": "lvmvol.cli.tree:tree",
        "activate": "lvmvol.cli.boot:activate",
        "install-units": "lvmvol.cli.boot:install_units",
        "check": "lvmvol.cli.check:check",
        "docker": "lvmvol.cli.docker:docker",
    },
)
@click.option(
    "--config",
    "config_path",
    envvar="LVMVOL_CONFIG",
    type=click.Path(dir_okay=False),
    help="Configuration file (default /etc/lvmvol/config.toml, or $LVMVOL_CONFIG).",
)
@click.option("-v", "--verbose", is_flag=True, help="Show each external command as it runs.")
@click.option("--debug", is_flag=True, help="Show command output and timings, and tracebacks on errors.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the commands that would change the system instead of running them.",
)
@click.version_option(__version__, "--version", prog_name="lvmvol")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool, debug: bool, dry_run: bool) -> None:
    """Manage data volumes on LVM thin pools: thin volumes, snapshots, mounts.

    \b
    Example:
      $ lvmvol pool init /dev/sdb
      $ lvmvol volume create db --size 10G
      $ lvmvol volume mount db
    """
    _configure_logging(verbose, debug, dry_run)
    ctx.ensure_object(dict)
    ctx.obj.update(config_path=config_path, debug=debug, dry_run=dry_run)


def main() -> None:
    cli(prog_name="lvmvol")
