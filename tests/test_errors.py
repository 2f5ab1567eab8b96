"""Errors a person can act on: a wrong setting, a missing folder, a read-only place, a missing
key or Ctrl-C each say so in one line (no traceback), and the commands a run prints (resume,
report, profiles by name) work as printed."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SAMPLE_IMAGES, make_workdir
from ocrkie.commands import report_command, resume_command, settings_of
from ocrkie.engines.registry import settings_blocks
from ocrkie.errors import ConfigError, ModelLoadError
from ocrkie.logs import job_logging
from ocrkie.settings import check_settings, full_schema, load_base_schema

BASE = load_base_schema(REPO / "workflow/schemas/config.schema.yaml")
SCHEMA = full_schema(BASE, settings_blocks({}))  # with each engine's own block
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())
TRACEBACK = ('File "', "Traceback", "KeyboardInterrupt", "Exception")


def ocrkie_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("ocrkie: ")]


def assert_one_clean_line(output: str, expected: str) -> None:
    """The error is one ``ocrkie:`` line holding ``expected``, and nothing looks like a
    traceback or a dump of the schema."""
    assert [line for line in ocrkie_lines(output) if expected in line], output
    assert not [line for line in output.splitlines() if line.strip().startswith(TRACEBACK)]
    assert "additionalProperties" not in output and "'$schema'" not in output


def as_run(command: str) -> list[str]:
    """A printed ``snakemake ...`` command, run with this Python's Snakemake."""
    words = shlex.split(command)
    assert words[0] == "snakemake"
    return [sys.executable, "-m", "snakemake", *words[1:]]


# -- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"shard_sise": 5}, "shard_sise: no such setting (did you mean shard_size?)"),
        (
            {"rapidocr": {**CONFIG["rapidocr"], "bach_size": 3}},
            "rapidocr.bach_size: no such setting (did you mean batch_size?)",
        ),
        ({"zzz": 1}, "zzz: no such setting; see config/README.md"),
        ({"shard_size": 0}, "shard_size: 0 is less than the minimum of 1"),
        ({"exports": ["pdf"]}, "exports.0: 'pdf' is not one of json, txt, hocr, alto, page"),
    ],
)
def test_a_wrong_setting_is_named_in_one_line(change: dict, message: str):
    with pytest.raises(ConfigError) as raised:
        check_settings({**CONFIG, **change}, SCHEMA)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_the_bundled_settings_pass():
    check_settings(CONFIG, SCHEMA)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("shard_sise=5", "ocrkie: shard_sise: no such setting (did you mean shard_size?)"),
        ("input_dir=nowhere", "input_dir 'nowhere' is not a folder (relative to the working"),
        ("train_dir=/nope", "ocrkie: train_dir '/nope' is not a folder"),
        ("input_list=missing.txt", "input_list 'missing.txt' is not a file (relative to"),
    ],
)
def test_setting_and_input_errors_are_one_line_without_traceback(
    tmp_path: Path, override: str, message: str
):
    workdir = make_workdir(tmp_path, [])
    done = workdir.snakemake("-n", "--config", override, check=False)
    assert done.returncode == 1
    assert_one_clean_line(done.stdout, message)
    if "relative" in message:
        assert f"relative to the working directory {tmp_path}" in done.stdout


def test_train_dir_without_images_names_train_dir(tmp_path: Path):
    workdir = make_workdir(tmp_path, [])
    (workdir.path / "labels").mkdir()
    done = workdir.snakemake("-n", "--config", "train_dir=labels", check=False)
    assert done.returncode == 1
    assert_one_clean_line(done.stdout, "ocrkie: train_dir 'labels' has no img/ folder")
    assert "input_dir" not in "".join(ocrkie_lines(done.stdout))


# -- Upstage without a key -----------------------------------------------------------------------


def test_a_dry_run_says_the_upstage_key_is_missing_and_a_run_stops_on_it(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:1])
    keys = ("UPSTAGE_API_KEY", "UPSTAGE_API_KEY_SSM_PARAMETER", "UPSTAGE_API_KEY_SECRET_ID")
    env = {k: v for k, v in os.environ.items() if k not in keys}
    args = ["--config", "input_dir=scans", "kie_backend=upstage"]
    dry = subprocess.run(
        [*workdir.command("-n", *args)], cwd=workdir.path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
    )  # fmt: skip
    assert dry.returncode == 0
    assert "ocrkie: no Upstage API key: set one of UPSTAGE_API_KEY" in dry.stdout
    assert "a run would stop here" in dry.stdout
    run = subprocess.run(
        [*workdir.command(*args)], cwd=workdir.path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
    )  # fmt: skip
    assert run.returncode == 1
    assert_one_clean_line(run.stdout, "ocrkie: no Upstage API key")
    assert not (workdir.results / "kie").exists()


# -- Ctrl-C ------------------------------------------------------------------------------------


def test_ctrl_c_says_how_to_resume_and_the_printed_command_resumes(tmp_path: Path):
    """Ctrl-C in a terminal sends SIGINT to Snakemake and every job (one process group)."""
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:4])
    log = tmp_path / "run.log"
    with log.open("w") as out:
        run = subprocess.Popen(
            workdir.command("--config", "input_dir=scans", "shard_size=1"),
            cwd=workdir.path, start_new_session=True, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 300
        while not list((workdir.results / "logs" / "ocr").glob("*.log")):
            assert run.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        time.sleep(1)  # the OCR jobs load their engine
        os.killpg(run.pid, signal.SIGINT)
        assert run.wait(timeout=120) == 130
    output = log.read_text()
    lines = ocrkie_lines(output)
    assert lines[-1] == (
        "ocrkie: stopped; resume with: snakemake --profile profiles/local-gpu --cores 2 "
        "--config input_dir=scans shard_size=1 --rerun-incomplete"
    )
    assert_one_clean_line(output, "stopped; resume with")
    assert "Error in rule" not in output
    resumed = subprocess.run(
        as_run(lines[-1].split("resume with: ", 1)[1]), cwd=workdir.path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert len(workdir.records("ocr")) == 4


@pytest.mark.parametrize(
    ("error", "status", "logged", "shown"),
    [
        (ModelLoadError("the model cannot load"), 1, "ERROR the model cannot load", True),
        (ConfigError("local.device: no such device"), 1, "ERROR local.device", True),
        (KeyboardInterrupt(), 130, "WARNING stopped (Ctrl-C)", False),
    ],
)
def test_a_job_ends_in_one_line(tmp_path: Path, capsys, error, status, logged, shown):
    log = tmp_path / "job.log"
    handler = signal.getsignal(signal.SIGINT)  # (Ctrl-C makes a job ignore any further one)
    try:
        with pytest.raises(SystemExit) as ended, job_logging([str(log)]):
            raise error
    finally:
        signal.signal(signal.SIGINT, handler)
    assert ended.value.code == status
    assert logged in log.read_text() and len(log.read_text().splitlines()) == 1
    assert (logged.split(" ", 1)[1] in capsys.readouterr().err) == shown


# -- read-only places --------------------------------------------------------------------------


def read_only(folder: Path, command: list[str]) -> list[str]:
    """``command`` run where ``folder`` is read-only: a read-only bind mount in a mount
    namespace of its own (root is not stopped by file modes; nothing outside sees it)."""
    return ["unshare", "-rm", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"',
            str(folder), *command]  # fmt: skip


def can_bind_read_only(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(
        read_only(probe, ["touch", str(probe / "x")]), capture_output=True, text=True
    )
    return shutil.which("unshare") is not None and "Read-only file system" in done.stderr


def test_finished_results_on_a_read_only_share(tmp_path: Path):
    if not can_bind_read_only(tmp_path):
        pytest.skip("no mount namespaces here for a read-only bind")
    workdir = make_workdir(tmp_path / "run", SAMPLE_IMAGES[:2])
    share = tmp_path / "share"
    args = ["--config", "input_dir=scans", f"results_dir={share}/results"]
    workdir.snakemake(*args)
    dry = subprocess.run(
        read_only(share, workdir.command("-n", *args)), cwd=workdir.path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stdout[-3000:]
    assert "Nothing to be done" in dry.stdout
    real = subprocess.run(
        read_only(share, workdir.command("--forcerun", "ocr", *args)), cwd=workdir.path,
        text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
    )  # fmt: skip
    assert real.returncode == 1
    assert_one_clean_line(
        real.stdout, f"ocrkie: results_dir {share}/results cannot be written (Read-only"
    )


def test_a_read_only_working_directory_is_said_in_one_line(tmp_path: Path):
    if not can_bind_read_only(tmp_path):
        pytest.skip("no mount namespaces here for a read-only bind")
    workdir = make_workdir(tmp_path / "run", SAMPLE_IMAGES[:1])
    dry = subprocess.run(
        read_only(workdir.path, workdir.command("-n", "--config", "input_dir=scans")),
        cwd=workdir.path, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=300,
    )  # fmt: skip
    assert dry.returncode == 1
    assert_one_clean_line(dry.stdout, f"ocrkie: the working directory {workdir.path} is read")


# -- the commands a run prints -----------------------------------------------------------------


def test_commands_keep_the_settings_and_drop_the_rest():
    argv = ["/x/bin/snakemake", "all", "-n", "--cores", "4", "--profile", "profiles/local-gpu",
            "--config", "input_dir=/data/my scans", "shard_size=5", "--configfile", "a.yaml",
            "b.yaml", "--forcerun", "ocr", "--directory=/w", "-c2"]  # fmt: skip
    assert settings_of(argv[1:]) == [
        "--profile", "profiles/local-gpu", "--config", "input_dir=/data/my scans",
        "shard_size=5", "--configfile", "a.yaml", "b.yaml", "--directory=/w",
    ]  # fmt: skip
    assert report_command(argv, "results/report.html") == (
        "snakemake --profile profiles/local-gpu --config 'input_dir=/data/my scans' "
        "shard_size=5 --configfile a.yaml b.yaml --directory=/w --report results/report.html"
    )
    assert resume_command(["snakemake", "--cores", "2"]) == (
        "snakemake --cores 2 --rerun-incomplete"
    )


def test_the_printed_report_command_reports_on_this_run_and_changes_no_plan(tmp_path: Path):
    workdir = make_workdir(tmp_path, SAMPLE_IMAGES[:2])
    (workdir.path / "mine.yaml").write_text("shard_size: 1\n")
    done = workdir.snakemake(
        "--configfile", "config/config.yaml", "mine.yaml", "--config", "input_dir=scans"
    )
    printed = done.stdout.split("the report itself, with these settings:\n", 1)[1]
    command = printed.splitlines()[0].strip()
    assert command == (
        "snakemake --profile profiles/local-gpu --configfile config/config.yaml mine.yaml "
        "--config input_dir=scans --report results/report.html"
    )
    plan = workdir.results / "plan" / "plan.json.gz"
    before = (plan.read_bytes(), plan.stat().st_mtime_ns)
    report = subprocess.run(
        as_run(command), cwd=workdir.path, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=600,
    )  # fmt: skip
    assert report.returncode == 0, report.stdout[-3000:]
    assert (workdir.results / "report.html").stat().st_size > 0
    assert "ocrkie: 2 images from scans in 2 shards" in report.stdout  # this run's plan
    assert "plan other work" not in report.stdout
    assert (plan.read_bytes(), plan.stat().st_mtime_ns) == before
    (workdir.path / "other").mkdir()
    shutil.copy(SAMPLE_IMAGES[3], workdir.path / "other")
    other = workdir.snakemake("--config", "input_dir=other", "--report", "other.html")
    assert "ocrkie: these settings plan other work than the last run in results/" in other.stdout
    assert (plan.read_bytes(), plan.stat().st_mtime_ns) == before


# -- profiles by name --------------------------------------------------------------------------


def test_make_profiles_lets_snakemake_find_them_by_name(tmp_path: Path):
    config_home = tmp_path / "config"
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home)}
    made = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "profiles", f"PY={sys.executable}"],
        env=env, text=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"--profile aws-batch: {config_home}/snakemake/aws-batch" in made.stdout
    workdir = make_workdir(tmp_path / "run", SAMPLE_IMAGES[:1])
    command = [sys.executable, "-m", "snakemake", "--profile", "local-gpu", "-n"]
    dry = subprocess.run(
        [*command, "--config", "input_dir=scans"], cwd=workdir.path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stdout[-3000:]
    assert "Using profile local-gpu" in dry.stdout
    found = subprocess.run(
        [sys.executable, "-c", "from snakemake.cli import get_profile_dir as g; "
         "print(g('aws-batch')[1], g('local-gpu')[1])"],
        cwd=tmp_path, env=env, text=True, capture_output=True, timeout=60,
    )  # fmt: skip
    assert found.stdout.split() == [
        f"{config_home}/snakemake/aws-batch/config.yaml",
        f"{config_home}/snakemake/local-gpu/config.yaml",
    ]
    assert (config_home / "snakemake/aws-batch/workflow-config.yaml").is_file()


# -- the set-up picks the GPU builds where nvidia-smi answers -----------------------------------


@pytest.mark.parametrize("answers", [True, False])
def test_the_set_up_picks_the_gpu_builds_where_nvidia_smi_answers(tmp_path: Path, answers: bool):
    tools = tmp_path / "bin"
    tools.mkdir()
    nvidia_smi = tools / "nvidia-smi"
    nvidia_smi.write_text(f"#!/bin/sh\necho 'GPU 0: NVIDIA H100'\nexit {0 if answers else 9}\n")
    nvidia_smi.chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}
    planned = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(REPO), "demo", f"VENV={tmp_path}/venv"],
        env=env, text=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    gpu = "pip uninstall --quiet -y onnxruntime" in planned.stdout
    assert gpu == answers
    assert f"{tmp_path}/venv/.installed-{'gpu' if answers else 'cpu'}" in planned.stdout
