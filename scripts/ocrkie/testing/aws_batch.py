"""The AWS Batch profile run offline: the container image's environment as the Dockerfile
gives it, a fake Batch (``moto_batch``), Snakemake runs with ``profiles/aws-batch`` as
shipped, and a copy of the repository to run them in. Shared by the tests and the
benchmarks; needs the development dependencies (moto)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .moto_batch import FakeAws

VENV_BIN = Path(sys.executable).parent
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def load_profile(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / "profiles" / "aws-batch" / "config.yaml").read_text())


def dockerfile_instructions(repo: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (repo / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, rest = line.strip().partition(" ")
            pairs.append((instruction.upper(), rest.strip()))
    return pairs


def dockerfile_env(repo: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, rest in dockerfile_instructions(repo):
        if instruction == "ENV":
            for name, value in re.findall(r"(\w+)=(\S+)", rest):
                env[name] = value.replace("$PATH", env.get("PATH", SYSTEM_PATH))
    return env


def image_env(repo: Path, wheelhouse: Path, home: Path) -> dict[str, str]:
    """The image's environment, with this machine's paths for the image's own."""
    env = dockerfile_env(repo)
    assert env["PIP_FIND_LINKS"] == "/opt/ocrkie/wheels"
    assert env["PATH"].startswith("/opt/venv/bin:")
    workdir = [
        rest for instruction, rest in dockerfile_instructions(repo) if instruction == "WORKDIR"
    ]
    image = {k: v for k, v in env.items() if not k.startswith(("UV_", "DEBIAN", "VIRTUAL_ENV"))}
    image.update(
        PATH=f"{VENV_BIN}:{SYSTEM_PATH}",
        PIP_FIND_LINKS=str(wheelhouse),
        PYTHONPATH=env["PYTHONPATH"].replace(workdir[-1], "{workdir}"),
        HOME=str(home),
    )
    return image


@dataclass
class Batch:
    aws: FakeAws
    queue: str
    role: str
    bucket: str
    home: Path


def git_snapshot(path: Path) -> None:
    """Make ``path`` a git work tree with everything staged (the source archive lists
    git-tracked files). Runs in the copy, never in the repository under test."""
    for args in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)


@dataclass
class Run:
    returncode: int
    output: str
    seconds: float


def snakemake_call(
    batch: Batch, workdir: Path, prefix: str, *args: str, **env: str
) -> tuple[list[str], dict[str, str]]:
    """The command and environment of a Snakemake run on the fake AWS Batch."""
    environment = {
        "PATH": f"{VENV_BIN}:{SYSTEM_PATH}",
        "HOME": str(batch.home),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(workdir / "scripts"),
        **batch.aws.client_env(),
        "SNAKEMAKE_AWS_BATCH_JOB_QUEUE": batch.queue,
        "SNAKEMAKE_AWS_BATCH_JOB_ROLE": batch.role,
        **env,
    }
    command = [
        str(VENV_BIN / "snakemake"),
        "--profile",
        "profiles/aws-batch",
        "--default-storage-prefix",
        f"s3://{batch.bucket}/{prefix}",
        *args,
    ]
    return command, environment


def run_snakemake(
    batch: Batch, workdir: Path, prefix: str, *args: str, timeout: int = 600, **env: str
) -> Run:
    command, environment = snakemake_call(batch, workdir, prefix, *args, **env)
    started = time.monotonic()
    done = subprocess.run(
        command, cwd=workdir, env=environment, capture_output=True, text=True, timeout=timeout
    )
    output = done.stdout + done.stderr
    (workdir / f"snakemake-{len(list(workdir.glob('snakemake-*.log')))}.log").write_text(output)
    return Run(done.returncode, output, time.monotonic() - started)


def requirements(definition: dict[str, Any]) -> dict[str, str]:
    props = definition["container_properties"]
    return {r["type"]: r["value"] for r in props["resourceRequirements"]}


def rule_of(definition: dict[str, Any]) -> str:
    # snakejob-def-<rule>-<uuid4>
    return re.sub(
        r"^snakejob-def-|-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$", "", definition["def_name"]
    )


def repo_copy(repo: Path, path: Path) -> Path:
    ignore = shutil.ignore_patterns(
        ".git",
        ".venv",
        ".snakemake",
        "results",
        "__pycache__",
        "*.egg-info",
        ".pytest_cache",
        ".ruff_cache",
    )
    shutil.copytree(repo, path, ignore=ignore)
    git_snapshot(path)
    return path
