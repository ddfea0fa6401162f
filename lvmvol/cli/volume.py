"""``lvmvol volume`` and ``lvmvol snapshot``: thin volumes, their mounts and snapshots."""

from __future__ import annotations

import click

from lvmvol.cli.common import confirmer, json_option, operation_context, print_json, report
from lvmvol.config import FILESYSTEMS
from lvmvol.cli.keys import key_options, new_key_options, read_key, read_rekey_keys

# Each command imports the operations it runs in its own body, so that
# --help and the commands that only read import neither cryptsetup's
# helpers nor the operations of the other commands.

pool_option = click.option(
    "--pool", "pool_spec", metavar="POOL", help="Thin pool as VG/NAME or NAME (default: the configured or only pool)."
)


@click.group()
def volume() -> None:
    """Create, list, mount and remove thin volumes."""


@volume.command("create")
@click.argument("name", required=False)
@click.option("--size", required=True, help="Virtual size, such as 100M or 10G (binary) or 10GB (decimal).")
@pool_option
@click.option("--fs", "filesystem", type=click.Choice(FILESYSTEMS), help="Filesystem to make (default: filesystem in the config file, else ext4).")
@click.option("--luks", is_flag=True, help="Encrypt the volume with LUKS2. Without a key option, a random key file is generated in key_dir.")
@key_options(create=True)
@json_option
@click.pass_context
def create(
    click_ctx: click.Context,
    name: str | None,
    size: str,
    pool_spec: str | None,
    filesystem: str | None,
    luks: bool,
    key_file: str | None,
    passphrase: bool,
    passphrase_stdin: bool,
    allow_discards: bool,
    as_json: bool,
) -> None:
    """Create a thin volume NAME (a generated name when omitted) and print its name."""
    from lvmvol.ops import volumes
    from lvmvol.units import parse_size

    size_bytes = parse_size(size)
    key = read_key(key_file, passphrase, passphrase_stdin, confirm=True)
    ctx = operation_context(click_ctx)
    outcome = volumes.create_volume(
        ctx,
        name,
        size_bytes,
        pool_spec,
        filesystem,
        encrypt=luks or key is not None,
        key=key,
        allow_discards=allow_discards,
    )
    report(outcome, as_json, "volume")


@volume.command("ls")
@json_option
@click.pass_context
def list_volumes(click_ctx: click.Context, as_json: bool) -> None:
    """List volumes and snapshots with size, origin, activation and mountpoint."""
    from lvmvol.ops.inventory import read_inventory

    inventory = read_inventory(operation_context(click_ctx))
    if as_json:
        print_json([volume.to_dict() for volume in inventory.volumes])
        return
    from lvmvol.cli.render import volume_table

    volume_table(inventory.volumes)


@volume.command("show")
@click.argument("name")
@json_option
@click.pass_context
def show(click_ctx: click.Context, name: str, as_json: bool) -> None:
    """Show one volume or snapshot."""
    from lvmvol.cli.render import volume_details
    from lvmvol.ops.inventory import read_inventory

    inventory = read_inventory(operation_context(click_ctx))
    found = inventory.volume(name)
    if as_json:
        document = found.to_dict()
        document["snapshots"] = [child.name for child in inventory.children(found)]
        print_json(document)
        return
    volume_details(found, inventory.children(found))


@volume.command("mount")
@click.argument("name")
@click.argument("mountpoint", required=False, type=click.Path(file_okay=False))
@key_options(create=False)
@json_option
@click.pass_context
def mount(
    click_ctx: click.Context,
    name: str,
    mountpoint: str | None,
    key_file: str | None,
    passphrase: bool,
    passphrase_stdin: bool,
    allow_discards: bool,
    as_json: bool,
) -> None:
    """Mount volume NAME at MOUNTPOINT (default: mount_root/NAME) and print the mountpoint.

    An encrypted volume's dm-crypt mapping is opened first with its recorded
    key file, or with the key given here.
    """
    from lvmvol.ops import mounting

    key = read_key(key_file, passphrase, passphrase_stdin, confirm=False)
    outcome = mounting.mount_volume(
        operation_context(click_ctx), name, mountpoint, key, allow_discards or None
    )
    report(outcome, as_json, "volume", line=outcome.details["mountpoint"])


@volume.command("umount")
@click.argument("name")
@json_option
@click.pass_context
def umount(click_ctx: click.Context, name: str, as_json: bool) -> None:
    """Unmount volume NAME wherever it is mounted, and close its dm-crypt mapping."""
    from lvmvol.ops import mounting

    outcome = mounting.umount_volume(operation_context(click_ctx), name)
    report(outcome, as_json, "volume")


@volume.command("rm")
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--force", is_flag=True, help="Unmount volumes that are mounted, then remove them.")
@click.option("-y", "--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation (with --force).")
@json_option
@click.pass_context
def remove(click_ctx: click.Context, names: tuple[str, ...], force: bool, assume_yes: bool, as_json: bool) -> None:
    """Remove volumes or snapshots. A volume in use is refused unless --force.

    An encrypted volume's LUKS key slots are erased before the LV is removed.
    """
    from lvmvol.ops import removal

    outcomes = removal.remove_volumes(operation_context(click_ctx), list(names), force, confirmer(assume_yes))
    if as_json:
        print_json([outcome.to_dict() for outcome in outcomes])
        return
    for outcome in outcomes:
        report(outcome, False, "volume")


@volume.command("encrypt")
@click.argument("name")
@key_options(create=True)
@json_option
@click.pass_context
def encrypt(
    click_ctx: click.Context,
    name: str,
    key_file: str | None,
    passphrase: bool,
    passphrase_stdin: bool,
    allow_discards: bool,
    as_json: bool,
) -> None:
    """Encrypt the plain volume NAME in place with LUKS2, keeping its data.

    The volume must be unmounted. It grows by 32 MiB for the LUKS2 header, so
    the filesystem keeps its size. Without a key option, a random key file
    is generated in key_dir. An interrupted encryption resumes when the same
    command runs again; a progress bar shows on a terminal.
    """
    from lvmvol.cli.progress import progress_bar
    from lvmvol.ops import encrypt as encrypt_ops

    key = read_key(key_file, passphrase, passphrase_stdin, confirm=True)
    ctx = operation_context(click_ctx)
    try:
        with progress_bar(f"encrypting {name}") as on_progress:
            outcome = encrypt_ops.encrypt_volume(ctx, name, key, allow_discards, on_progress)
    except KeyboardInterrupt:
        click.echo(f"lvmvol: note: run 'lvmvol volume encrypt {name}' again to resume the encryption", err=True)
        raise
    report(outcome, as_json, "volume")


@volume.command("rekey")
@click.argument("name")
@new_key_options
@key_options(create=False, discards=False)
@json_option
@click.pass_context
def rekey(
    click_ctx: click.Context,
    name: str,
    new_key_file: str | None,
    new_passphrase: bool,
    new_passphrase_stdin: bool,
    key_file: str | None,
    passphrase: bool,
    passphrase_stdin: bool,
    as_json: bool,
) -> None:
    """Replace the key of the encrypted volume NAME, also while it is mounted.

    The new key gets a key slot, the current key's slot is removed, and the
    new key is recorded with the volume. The current key is the recorded
    key file unless a key option names it. Snapshots keep the key they were
    taken with.
    """
    from lvmvol.ops import rekey as rekey_ops

    new_key, current_key = read_rekey_keys(
        new_key_file, new_passphrase, new_passphrase_stdin, key_file, passphrase, passphrase_stdin
    )
    outcome = rekey_ops.rekey_volume(operation_context(click_ctx), name, new_key, current_key)
    report(outcome, as_json, "volume")


@click.command()
@click.argument("source")
@click.argument("name", required=False)
@json_option
@click.pass_context
def snapshot_command(click_ctx: click.Context, source: str, name: str | None, as_json: bool) -> None:
    """Take a thin snapshot of SOURCE named NAME (default: SOURCE-YYYYmmdd-HHMMSS) and print its name."""
    from lvmvol.ops import snapshots

    outcome = snapshots.create_snapshot(operation_context(click_ctx), source, name)
    report(outcome, as_json, "snapshot")


volume.add_command(snapshot_command, name="snapshot")
