"""Commands printed for a person to run next (resume, report), rebuilt from the command line
of the run that prints them, so that they carry the same settings and work as printed."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

# The options that decide what the workflow is and which settings it runs with: a report (or
# any later command about the same results) needs exactly these.
SETTINGS = {
    "--profile",
    "--workflow-profile",
    "--configfile",
    "--configfiles",
    "--config",
    "-C",
    "--directory",
    "-d",
    "--snakefile",
    "-s",
}
SETTINGS_PREFIXES = ("--default-storage-", "--storage-")


def resume_command(argv: Sequence[str]) -> str:
    """The same command again, told to redo the jobs that were cut short."""
    args = list(argv[1:])
    if "--rerun-incomplete" not in args and "--ri" not in args:
        args.append("--rerun-incomplete")
    return _command(args)


def report_command(argv: Sequence[str], html: str) -> str:
    """``snakemake <the run's settings> --report <html>``: no targets, no run options."""
    return _command([*settings_of(argv[1:]), "--report", html])


def settings_of(args: Sequence[str]) -> list[str]:
    """The options of ``args`` in ``SETTINGS`` (and storage settings), with their values;
    targets and every other option (cores, reruns, dry run...) left out."""
    kept: list[str] = []
    keeping = False
    for arg in args:
        if arg.startswith("-") and not _is_number(arg):
            name = arg.split("=", 1)[0]
            keeping = name in SETTINGS or name.startswith(SETTINGS_PREFIXES)
            if keeping:
                kept.append(arg)
            keeping = keeping and "=" not in arg
        elif keeping:
            kept.append(arg)
    return kept


def _is_number(arg: str) -> bool:
    try:
        float(arg)
    except ValueError:
        return False
    return True


def _command(args: list[str]) -> str:
    return shlex.join(["snakemake", *args])
