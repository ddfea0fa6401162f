"""``lvmvol volume`` and ``lvmvol snapshot``: thin volumes, their mounts and snapshots."""

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
from lvmvol.cli.completion import complete_pool, complete_snapshot, complete_volume
from lvmvol.config import FILESYSTEMS
from lvmvol.errors import InvalidInput
from lvmvol.cli.keys import key_options, new_key_options, read_key, read_rekey_keys
from lvmvol.units import parse_size, parse_size_change

# Each command imports the operations it runs in its own body, so that
# --help and the commands that only read import neither cryptsetup's
# helpers nor the operations of the other commands.


def persist_option(help_text: str):
    return click.option("--persist", is_flag=True, help=help_text)


pool_option = click.option(
    "--pool",
    "pool_spec",
    metavar="POOL",
    shell_complete=complete_pool,
    help="Thin pool as VG/NAME or NAME (default: the configured or only pool)."
)
allow_overcommit_option = click.option(
    "--allow-overcommit",
    is_flag=True,
    help="Go ahead even if the pool's thin volumes and snapshots would total more than "
    "overcommit_ratio times its data size. A pool past its use threshold is still rejected.",
)


@click.group()
def volume() -> None:
    """Create, list, mount and remove thin volumes.

    \b
    Example:
      $ lvmvol volume create db --size 10G
      $ lvmvol volume mount db
    """


@volume.command("create")
@click.argument("name", required=False)
@click.option("--size", required=True, help="Virtual size, such as 100M or 10G (binary) or 10GB (decimal).")
@pool_option
@click.option("--fs", "filesystem", type=click.Choice(FILESYSTEMS), help="Filesystem to make (default: filesystem in the config file, else ext4).")
@click.option("--luks", is_flag=True, help="Encrypt the volume with LUKS2. Without a key option, a random key file is generated in key_dir.")
@key_options(create=True)
@allow_overcommit_option
@click.option(
    "--mount",
    "mount_after",
    is_flag=True,
    help="Mount the volume once it is made (at mount_root/NAME or --mountpoint). "
    "An encrypted volume is unlocked once for both.",
)
@click.option(
    "--mountpoint",
    metavar="PATH",
    type=click.Path(file_okay=False),
    help="Where --mount mounts the volume; implies --mount. Checked before anything is made.",
)
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
    allow_overcommit: bool,
    mount_after: bool,
    mountpoint: str | None,
    as_json: bool,
) -> None:
    """Create a thin volume NAME (a generated name when omitted) and print its name.

    With --mount, the volume is then mounted as 'lvmvol volume mount' does.
    If that mount fails, the volume stays and the error names it; the same
    command run again with NAME mounts it.

    \b
    Example:
      $ lvmvol volume create db --size 10G
      $ lvmvol volume create vault --size 1G --luks --mountpoint /srv/vault
    """
    from lvmvol.cli.progress import status_spinner
    from lvmvol.ops import volumes

    size_bytes = parse_size(size)
    key = read_key(key_file, passphrase, passphrase_stdin, confirm=True)
    ctx = operation_context(click_ctx)
    with status_spinner(f"creating {name or 'volume'}"):
        outcome = volumes.create_volume(
            ctx,
            name,
            size_bytes,
            pool_spec,
            filesystem,
            encrypt=luks or key is not None,
            key=key,
            allow_discards=allow_discards,
            allow_overcommit=allow_overcommit,
            mount=mount_after or mountpoint is not None,
            mountpoint=mountpoint,
        )
    report(outcome, as_json, "volume")


@volume.command("ls", cls=ReadOnlyCommand)
@output_option
@json_option
@click.pass_context
def list_volumes(click_ctx: click.Context, output: str | None, as_json: bool) -> None:
    """List volumes and snapshots with size, origin, activation and mountpoint.

    \b
    Example:
      $ lvmvol volume ls
      $ for name in $(lvmvol volume ls -o name); do lvmvol volume show "$name"; done
    """
    from lvmvol.cli.render import volume_table
    from lvmvol.ops.inventory import read_inventory

    output = output_format(output, as_json)
    inventory = read_inventory(operation_context(click_ctx))
    if output == "json":
        print_json([volume.to_dict() for volume in inventory.volumes])
    elif output == "name":
        print_names(inventory.volumes)
    else:
        volume_table(inventory.volumes)


@volume.command("show", cls=ReadOnlyCommand)
@click.argument("name", shell_complete=complete_volume)
@json_option
@click.pass_context
def show(click_ctx: click.Context, name: str, as_json: bool) -> None:
    """Show one volume or snapshot.

    \b
    Example:
      $ lvmvol volume show db --json
    """
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
@click.argument("name", shell_complete=complete_volume)
@click.argument("mountpoint", required=False, type=click.Path(file_okay=False))
@click.option("--read-only", is_flag=True, help="Mount read-only (the default for snapshots).")
@click.option("--read-write", is_flag=True, help="Mount read-write (the default for volumes that are not snapshots).")
@click.option(
    "--options",
    "options",
    metavar="OPTS",
    help="Comma-separated mount options, added to mount_options from the config file (default nodev,nosuid); "
    "dev overrides nodev, suid nosuid, and so on.",
)
@key_options(create=False)
@persist_option("Also mount it at MOUNTPOINT at boot ('lvmvol activate'), recorded in the volume's LV tags.")
@json_option
@click.pass_context
def mount(
    click_ctx: click.Context,
    name: str,
    mountpoint: str | None,
    read_only: bool,
    read_write: bool,
    options: str | None,
    key_file: str | None,
    passphrase: bool,
    passphrase_stdin: bool,
    allow_discards: bool,
    persist: bool,
    as_json: bool,
) -> None:
    """Mount volume NAME at MOUNTPOINT (default: mount_root/NAME) and print the mountpoint.

    A mountpoint that lvmvol creates gets mode 0700. An existing one must be
    an empty directory, not a symbolic link, with nothing mounted on it. An
    encrypted volume's dm-crypt mapping is opened first with its recorded key
    file, or with the key given here.

    \b
    Example:
      $ lvmvol volume mount db /srv/db --persist
    """
    from lvmvol.ops import mounting
    from lvmvol.ops import persistence

    if read_only and read_write:
        raise InvalidInput("--read-only and --read-write exclude each other", "pass one of them")
    access = None
    if read_only or read_write:
        access = read_only
    key = read_key(key_file, passphrase, passphrase_stdin, confirm=False)
    ctx = operation_context(click_ctx)
    outcome = mounting.mount_volume(ctx, name, mountpoint, key, allow_discards or None, access, options)
    if persist:
        requested = []
        if access is not None:
            requested.append("ro" if access else "rw")
        requested += [option for option in (options or "").split(",") if option]
        recorded = persistence.record_boot_mount(ctx, name, outcome.details["mountpoint"], ",".join(requested))
        outcome.changed = outcome.changed or recorded
        outcome.details["persistent"] = True
    report(outcome, as_json, "volume", line=outcome.details["mountpoint"])


@volume.command("umount")
@click.argument("name", shell_complete=complete_volume)
@click.option(
    "--lazy",
    is_flag=True,
    help="Detach a busy filesystem now; the kernel frees it when the processes using it finish.",
)
@persist_option("Also stop mounting it at boot.")
@json_option
@click.pass_context
def umount(click_ctx: click.Context, name: str, lazy: bool, persist: bool, as_json: bool) -> None:
    """Unmount volume NAME wherever it is mounted, and close its dm-crypt mapping.

    A busy filesystem is left mounted, and the error names the processes that use it.

    \b
    Example:
      $ lvmvol volume umount db
    """
    from lvmvol.ops import mounting
    from lvmvol.ops import persistence

    ctx = operation_context(click_ctx)
    outcome = mounting.umount_volume(ctx, name, lazy)
    # The operation read the boot mountpoint before the unmount, so no second
    # lvs is needed; --persist clears it.
    if persist:
        cleared = persistence.clear_boot_mount(ctx, name)
        outcome.changed = outcome.changed or cleared
        outcome.details["persistent_mountpoint"] = None
    boot_mountpoint = outcome.details["persistent_mountpoint"]
    if boot_mountpoint and not persist:
        outcome.notes.append(
            f"{name} is still mounted at {boot_mountpoint} at boot; "
            f"'lvmvol volume umount {name} --persist' stops that"
        )
    report(outcome, as_json, "volume")


@volume.command("restore")
@click.argument("snapshot", shell_complete=complete_snapshot)
@click.option(
    "--keep-snapshot",
    is_flag=True,
    help="Keep the snapshot: a copy with its name, content and settings replaces it.",
)
@json_option
@click.pass_context
def restore(click_ctx: click.Context, snapshot: str, keep_snapshot: bool, as_json: bool) -> None:
    """Give the origin of SNAPSHOT the snapshot's content, and print the origin's name.

    The origin and the snapshot must be unmounted and unused. The snapshot is
    consumed unless --keep-snapshot. An interrupted restore finishes when the
    same command runs again.

    \b
    Example:
      $ lvmvol volume umount db
      $ lvmvol volume restore db-before-upgrade
    """
    from lvmvol.cli.progress import status_spinner
    from lvmvol.ops import restore as restore_ops

    ctx = operation_context(click_ctx)
    with status_spinner(f"restoring from {snapshot}"):
        outcome = restore_ops.restore_volume(ctx, snapshot, keep_snapshot)
    report(outcome, as_json, "volume")


@volume.command("resize")
@click.argument("name", shell_complete=complete_volume)
@click.option("--size", required=True, help="New virtual size, such as 20G, or +SIZE to add to the current size.")
@allow_overcommit_option
@key_options(create=False, discards=False)
@json_option
@click.pass_context
def resize(
    click_ctx: click.Context,
    name: str,
    size: str,
    allow_overcommit: bool,
    key_file: str | None,
    passphrase: bool,
    passphrase_stdin: bool,
    as_json: bool,
) -> None:
    """Grow volume NAME: the thin volume, its LUKS mapping, then its filesystem.

    Works while the volume is mounted; an unmounted one is mounted at a
    private directory while its filesystem grows. Each layer's size is
    checked afterwards. Shrinking is refused. An encrypted volume needs its
    key: the recorded key file, unless a key option gives it.

    \b
    Example:
      $ lvmvol volume resize db --size +5G
    """
    from lvmvol.cli.progress import status_spinner
    from lvmvol.ops import resize as resize_ops

    amount, relative = parse_size_change(size)
    key = read_key(key_file, passphrase, passphrase_stdin, confirm=False)
    ctx = operation_context(click_ctx)
    with status_spinner(f"resizing {name}"):
        outcome = resize_ops.resize_volume(ctx, name, amount, relative, key, allow_overcommit)
    report(outcome, as_json, "volume")


@volume.command("rm")
@click.argument("names", nargs=-1, required=True, metavar="NAME...", shell_complete=complete_volume)
@click.option("--force", is_flag=True, help="Unmount volumes that are mounted, then remove them.")
@click.option("-y", "--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation (with --force).")
@json_option
@click.pass_context
def remove(click_ctx: click.Context, names: tuple[str, ...], force: bool, assume_yes: bool, as_json: bool) -> None:
    """Remove volumes or snapshots. A volume in use is refused unless --force.

    An encrypted volume's LUKS key slots are erased before the LV is removed.

    \b
    Example:
      $ lvmvol volume rm scratch
      $ lvmvol volume rm db --force --yes
    """
    from lvmvol.ops import removal

    outcomes = removal.remove_volumes(operation_context(click_ctx), list(names), force, confirmer(assume_yes))
    if as_json:
        print_json([outcome.to_dict() for outcome in outcomes])
        return
    for outcome in outcomes:
        report(outcome, False, "volume")


@volume.command("encrypt")
@click.argument("name", shell_complete=complete_volume)
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

    \b
    Example:
      $ lvmvol volume umount db
      $ lvmvol volume encrypt db --key-file /run/keys/db.key
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
@click.argument("name", shell_complete=complete_volume)
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

    \b
    Example:
      $ lvmvol volume rekey db --new-key-file /run/keys/db-2.key
    """
    from lvmvol.ops import rekey as rekey_ops

    new_key, current_key = read_rekey_keys(
        new_key_file, new_passphrase, new_passphrase_stdin, key_file, passphrase, passphrase_stdin
    )
    outcome = rekey_ops.rekey_volume(operation_context(click_ctx), name, new_key, current_key)
    report(outcome, as_json, "volume")


@click.command()
@click.argument("source", shell_complete=complete_volume)
@click.argument("name", required=False)
@click.option("--read-only", is_flag=True, help="Make the snapshot's LV read-only, so nothing can write to it.")
@allow_overcommit_option
@json_option
@click.pass_context
def snapshot_command(
    click_ctx: click.Context,
    source: str,
    name: str | None,
    read_only: bool,
    allow_overcommit: bool,
    as_json: bool,
) -> None:
    """Take a thin snapshot of SOURCE named NAME (default: SOURCE-YYYYmmdd-HHMMSS) and print its name.

    A mounted filesystem on SOURCE is frozen for the instant of the
    snapshot, so the snapshot's filesystem is clean.

    \b
    Example:
      $ lvmvol snapshot db db-before-upgrade --read-only
    """
    from lvmvol.ops import snapshots

    outcome = snapshots.create_snapshot(
        operation_context(click_ctx), source, name, read_only=read_only, allow_overcommit=allow_overcommit
    )
    report(outcome, as_json, "snapshot")


volume.add_command(snapshot_command, name="snapshot")
