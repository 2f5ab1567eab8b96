"""What planning costs at scale: ``snakemake -n`` and a no-op rerun on generated batches.

    python scripts/bench/plan.py [--counts 10000 100000] [--keep DIR] [--config max_shards=0]
                                 [--workflow OTHER_CHECKOUT]

For each count it generates that many image files (empty: planning reads no pixels) in
folders of 1,000, then measures with the local profile:

1. ``snakemake -n`` on the fresh batch: wall and CPU time, peak RSS (the largest process),
   bytes printed, and whether the plan line comes first;
2. a no-op rerun: every record and manifest is put in place (the plan written by a first
   ``snakemake --touch``, records written as stubs, manifests by ``snakemake --touch``), then
   a plain run, which must do nothing.

``--workflow`` measures another checkout (an earlier commit in a ``git worktree``), so that
before and after run side by side on the same machine. Figures are printed as a table;
nothing is asserted (the machine is shared: compare ratios, and CPU seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import REPO

from ocrkie.plan import decode_plan

WORKFLOW = [REPO]  # the checkout whose workflow and library run (--workflow)
JOB_LIST = ".snakemake/ocrkie/dry-run-jobs.txt"  # where a dry run of many jobs lists them


def generate(root: Path, count: int) -> Path:
    scans = root / "scans"
    for n in range(count):
        folder = scans / f"box{n // 1000:04d}"
        if n % 1000 == 0:
            folder.mkdir(parents=True)
        (folder / f"receipt_{n:07d}.jpg").touch()
    return scans


@dataclass
class Run:
    wall: float  # seconds
    cpu: float  # user + system seconds: steadier than wall time on a busy machine
    rss: int  # peak, MB, of the largest process
    output: str


def snakemake(workdir: Path, *args: str) -> Run:
    """One run of the workflow in ``workdir`` (that of ``WORKFLOW``), timed."""
    command = ["/usr/bin/time", "-f", "%e %U %S %M", sys.executable, "-m", "snakemake"]
    command += ["--profile", "profiles/local-gpu", "--cores", "2", *args]
    env = {**os.environ, "PYTHONPATH": str(WORKFLOW[0] / "scripts")}
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    wall, user, system, rss = done.stderr.strip().splitlines()[-1].split()
    output = done.stdout + done.stderr.rsplit("\n", 2)[0]
    return Run(float(wall), round(float(user) + float(system), 1), int(rss) // 1024, output)


def complete(workdir: Path, dry_run: str, *config: str) -> None:
    """Put every record and every output the dry run named in place (stubs), then let
    Snakemake take them as its own (``--touch``): the state after a finished run."""
    results = workdir / "results"
    snakemake(workdir, "--touch", "--quiet", "all", *config)  # writes the plan (-n does not)
    with open(results / "plan" / "plan.json.gz", "rb") as handle:
        shards = decode_plan(handle.read())
    for stage in ("ocr", "kie"):
        (results / stage).mkdir(parents=True, exist_ok=True)
        for shard in shards:
            for image in shard.images:
                (results / stage / f"{image.id}.json").write_text('{"status": "ok"}\n')
    stub(workdir, outputs(workdir, dry_run))
    if JOB_LIST in dry_run:  # the shard jobs were in the file: now the others are left
        stub(workdir, outputs(workdir, snakemake(workdir, "-n", *config).output))
    snakemake(workdir, "--touch", "--quiet", "all", *config)


def outputs(workdir: Path, dry_run: str) -> list[str]:
    """The outputs of the jobs a dry run lists, or of those in the job list it wrote."""
    if JOB_LIST in dry_run:
        lines = (workdir / JOB_LIST).read_text().splitlines()
        return [line.rsplit(": ", 1)[1] for line in lines]
    listed = re.findall(r"^Reason: Missing output files: ([^;\n]+)", dry_run, re.M)
    return [output for line in listed for output in line.split(", ")]


def stub(workdir: Path, paths: list[str]) -> None:
    for output in paths:
        (workdir / output).parent.mkdir(parents=True, exist_ok=True)
        (workdir / output).write_text("{}\n")


def workdir_for(root: Path) -> Path:
    for name in ("workflow", "config", "scripts", "profiles", "envs", "resources"):
        (root / name).symlink_to(WORKFLOW[0] / name)
    return root


def measure(
    count: int, root: Path, noop: bool = True, settings: tuple[str, ...] = ()
) -> dict[str, object]:
    workdir = workdir_for(root)
    started = time.perf_counter()
    generate(root, count)
    made = time.perf_counter() - started
    config = ("--config", "input_dir=scans", *settings)
    dry = snakemake(workdir, "-n", *config)
    output = dry.output
    lines = [
        line
        for line in output.splitlines()
        if not line.startswith(("Using profile", "Config file"))
    ]
    jobs = re.search(r"^total\s+(\d+)$", output, re.M)
    row: dict[str, object] = {
        "images": count,
        "generate_s": round(made, 1),
        "dry_run_s": dry.wall,
        "dry_run_cpu_s": dry.cpu,
        "dry_run_peak_rss_mb": dry.rss,
        "dry_run_output_bytes": len(output.encode()),
        "jobs": int(jobs[1]) if jobs else None,
        "plan_line_first": lines[0].startswith("ocrkie: "),
    }
    if not noop:
        print(json.dumps(row), flush=True)
        return row
    complete(workdir, output, *config)
    row["plan_file_mb"] = round(os.path.getsize(root / "results/plan/plan.json.gz") / 2**20, 2)
    print(json.dumps(row), flush=True)
    rerun = snakemake(workdir, *config)
    row |= {
        "noop_rerun_s": rerun.wall,
        "noop_cpu_s": rerun.cpu,
        "noop_peak_rss_mb": rerun.rss,
        "noop_did_nothing": "Nothing to be done" in rerun.output,
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--keep", type=Path, help="work here and keep it (default: a temp dir)")
    parser.add_argument("--no-noop", action="store_true", help="only the dry run")
    parser.add_argument(
        "--workflow", type=Path, default=REPO, help="the checkout to measure (default: this one)"
    )
    parser.add_argument("--config", nargs="+", default=[], help="more settings (key=value)")
    args = parser.parse_args()
    WORKFLOW[0] = args.workflow.resolve()
    rows = []
    for count in args.counts:
        root = Path(tempfile.mkdtemp(prefix=f"bench-plan-{count}-", dir=args.keep))
        try:
            rows.append(measure(count, root, not args.no_noop, tuple(args.config)))
        finally:
            if args.keep is None:
                shutil.rmtree(root, ignore_errors=True)
    print()
    print(
        "| images | -n wall s (CPU s) | -n peak RSS MB | -n prints bytes | jobs "
        "| no-op rerun s (CPU s) |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        noop = f"{row['noop_rerun_s']} ({row['noop_cpu_s']})" if "noop_rerun_s" in row else "-"
        print(
            f"| {row['images']:,} | {row['dry_run_s']} ({row['dry_run_cpu_s']}) | "
            f"{row['dry_run_peak_rss_mb']} | {row['dry_run_output_bytes']:,} | {row['jobs']} | "
            f"{noop} |"
        )


if __name__ == "__main__":
    main()
