"""``lvmvol check``: list what does not add up, and repair it with ``--repair``."""

from __future__ import annotations

import click

from lvmvol.cli.common import ReadOnlyCommand, confirmer, json_option, operation_context, print_json
from lvmvol.errors import LvmvolError, ProblemsRemain


@click.command(cls=ReadOnlyCommand)
@click.option("--repair", is_flag=True, help="Repair each problem as listed, after confirmation.")
@click.option("-y", "--yes", "assume_yes", is_flag=True, help="Do not ask for confirmation (with --repair).")
@json_option
@click.pass_context
def check(click_ctx: click.Context, repair: bool, assume_yes: bool, as_json: bool) -> None:
    """List lvmvol volumes, mappings, mountpoints, key files and loop files that do not add up.

    Exits 0 when nothing is wrong, 8 when problems remain. With --repair,
    each problem's repair is listed, then carried out after confirmation;
    problems that need a decision are only listed, with what to do.
    In JSON, "changed" is true when a repair was carried out.

    \b
    Example:
      $ lvmvol check
      $ lvmvol check --repair --yes
    """
    from lvmvol.ops import check as check_ops

    ctx = operation_context(click_ctx, mutating=repair)
    problems = check_ops.find_problems(ctx)
    results: dict[int, str | None] = {}

    if not as_json:
        for problem in problems:
            click.echo(f"{problem.kind}\t{problem.subject}\t{problem.detail}")
            if problem.repair:
                click.echo(f"  repair: {problem.repair}")
            if problem.hint:
                click.echo(f"  hint: {problem.hint}")

    repairable = [problem for problem in problems if problem.repair]
    if repair and repairable:
        confirm = confirmer(assume_yes)
        if confirm(f"Carry out the {len(repairable)} repair(s) listed?"):
            for problem in repairable:
                try:
                    check_ops.repair_problem(ctx, problem)
                    results[id(problem)] = None
                    if not as_json:
                        click.echo(f"lvmvol: repaired {problem.subject}: {problem.repair}", err=True)
                except LvmvolError as error:
                    results[id(problem)] = str(error)
                    click.echo(f"lvmvol: repair of {problem.subject} failed: {error}", err=True)

    remaining = problems if ctx.dry_run or not results else check_ops.find_problems(ctx)
    if as_json:
        print_json(
            {
                "changed": any(error is None for error in results.values()),
                "problems": [
                    {
                        **problem.to_dict(),
                        "repaired": (id(problem) in results and results[id(problem)] is None),
                        "repair_error": results.get(id(problem)),
                    }
                    for problem in problems
                ],
                "remaining": [problem.to_dict() for problem in remaining],
            }
        )
    if remaining:
        hint = "run 'lvmvol check --repair' to repair them" if not repair else "see the hints above"
        raise ProblemsRemain(f"{len(remaining)} problem(s) remain", hint)
    if not as_json:
        click.echo("lvmvol: no problems found" if not problems else "lvmvol: all problems repaired", err=True)
