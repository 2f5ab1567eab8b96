"""The SLURM profile on a real one-node SLURM cluster, not a fake.

Debian's packages (``make test`` installs them) make the cluster: munged, MariaDB and slurmdbd
(the accounting that ``sacct`` reads, as on clusters), slurmctld and slurmd, all started here
with a configuration written for this machine (its cores and memory from ``slurmd -C``, no
GPU) in a temporary folder, and all stopped and removed when the test ends, however it ends.
SLURM's commands find the configuration through ``SLURM_CONF``; the ``srun`` that the plugin
starts inside each job (which clears ``SLURM_*`` variables) through ``/run/slurm/conf``, where
configless clusters keep it, for as long as the cluster runs. Each job gets a temporary folder
of its own (a TaskProlog), as on clusters with job-private ``/tmp``.

Runs use ``profiles/slurm`` with only its placeholders filled in (the test cluster's account
and partition), ``--jobs 2 --cores 2`` (its two cores) and
``--slurm-init-seconds-before-status-checks 1`` (this controller answers at once). Run alone:
``pytest -m slurm`` (``make test-slurm``). It needs root and the packages; without them it
fails, unless ``OCRKIE_SKIP_SLURM=1`` asks to skip it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, SAMPLE_IMAGES, Workdir, make_workdir
from ocrkie.inputs import image_id
from ocrkie.testing.upstage_fake import FakeUpstage

pytestmark = pytest.mark.slurm

PROFILE_DIR = REPO / "profiles" / "slurm"
PROGRAMS = (
    "munged",
    "mariadb-install-db",
    "my_print_defaults",  # which mariadb-install-db runs
    "mariadbd",
    "slurmdbd",
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "squeue",
    "sacct",
    "sacctmgr",
    "sinfo",
)
RUN_CONF = Path("/run/slurm/conf")  # read by SLURM's commands that have no SLURM_CONF
ACCOUNT = "ocrkie-scans"
PARTITION = "ocrkie-cpu"
CLUSTER = "ocrkie-test"
MARKER = "# A one-node test cluster of ocrkie's tests/test_slurm.py; removed after them."


def load_profile() -> dict[str, Any]:
    return yaml.safe_load((PROFILE_DIR / "config.yaml").read_text())


def load_workflow_config() -> dict[str, Any]:
    return yaml.safe_load((PROFILE_DIR / "workflow-config.yaml").read_text())


# -- the profile as shipped --------------------------------------------------------------------


def test_profile_settings() -> None:
    profile = load_profile()
    assert profile["executor"] == "slurm"
    assert isinstance(profile["jobs"], int) and 1 <= profile["jobs"] <= 500  # bounded
    assert isinstance(profile["cores"], int) and profile["cores"] >= 1  # dry run = run
    defaults = profile["default-resources"]
    # placeholders the user fills in; the run time a shard of shard_size images needs
    assert defaults["slurm_account"] == defaults["slurm_partition"] == "CHANGE-ME"
    assert isinstance(defaults["runtime"], int) and defaults["runtime"] >= 60
    # GPUs come from the rules (gpu=1 where OCR computes on one), never for every job
    assert "gpu" not in defaults and "gres" not in defaults and "set-resources" not in profile
    assert profile["keep-going"] is True and profile["retries"] >= 1
    assert profile["resources"]["upstage_api"] >= 1
    assert "config" not in profile and profile["configfile"] == "workflow-config.yaml"
    settings = load_workflow_config()
    folder = settings["upstage"]["rate_limit_dir"]
    assert not os.path.isabs(folder) and folder.startswith(".snakemake/")  # on the shared FS
    assert settings["cache_format"] == "files"  # LMDB holds on one machine only


def test_the_plugin_is_pinned_with_its_hashes() -> None:
    lock = (REPO / "envs" / "requirements.txt").read_text()
    assert re.search(r"^snakemake-executor-plugin-slurm==2\.8\.0 \\\n +--hash=sha256:", lock, re.M)
    project = (REPO / "pyproject.toml").read_text()
    assert '"snakemake-executor-plugin-slurm==2.8.0"' in project


# -- the cluster -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


SEARCH_PATH = f"{os.environ.get('PATH', '/usr/bin:/bin')}:/usr/sbin:/sbin"  # daemons in sbin


def ours(link: Path) -> bool:
    """Whether ``link`` leads to a configuration these tests wrote."""
    try:
        return (link / "slurm.conf").read_text().startswith(MARKER)
    except OSError:
        return False


def unavailable() -> str | None:
    """Why this machine cannot run the test cluster, or None. A link in RUN_CONF left by a
    test run that was killed before it could clean up is removed (the link only)."""
    missing = [p for p in PROGRAMS if shutil.which(p, path=SEARCH_PATH) is None]
    if missing:
        return (
            f"SLURM's programs are missing ({', '.join(missing)}): `make test` installs them "
            "(apt-get install slurmctld slurmd slurm-client slurmdbd munge mariadb-server-core "
            "mariadb-client-core)"
        )
    if os.geteuid() != 0:
        return "the test cluster's daemons run as root: run these tests as root"
    if Path("/etc/slurm/slurm.conf").exists():
        return "/etc/slurm/slurm.conf exists: this machine has a SLURM of its own, left alone"
    if RUN_CONF.is_symlink() and (not RUN_CONF.exists() or ours(RUN_CONF)):
        RUN_CONF.unlink()
    if RUN_CONF.exists() or RUN_CONF.is_symlink():
        return f"{RUN_CONF} exists: a configless SLURM runs here, left alone"
    return None


@dataclass
class Cluster:
    root: Path
    env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen] = field(default_factory=list)
    logs_open: list[Any] = field(default_factory=list)

    def command(self, *args: str, check: bool = True, timeout: int = 60) -> str:
        done = subprocess.run(
            args, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed: {done.stderr}{self.logs()}")
        return done.stdout

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        """A daemon in the foreground, in a session of its own; stopped by ``stop``."""
        log = (self.root / "log" / f"{Path(args[0]).name}.out").open("a")
        self.logs_open.append(log)
        process = subprocess.Popen(
            args, env=env or self.env, stdout=log, stderr=log, start_new_session=True
        )
        self.processes.append(process)
        return process

    def wait_for(self, what: str, ready, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            for process in self.processes:
                if process.poll() is not None:
                    raise AssertionError(f"{process.args[0]} exited while {what}{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out: {what}{self.logs()}")
            time.sleep(0.2)

    def logs(self) -> str:
        tails = []
        for log in sorted((self.root / "log").glob("*")):
            lines = log.read_text(errors="replace").splitlines()[-15:]
            tails.append(f"\n--- {log.name}\n" + "\n".join(lines))
        return "".join(tails)

    def jobs_in_queue(self) -> list[str]:
        return self.command("squeue", "-h", "-o", "%i").split()

    def wait_until_no_job_runs(self, timeout: float = 180) -> None:
        self.wait_for("jobs still in the queue", lambda: not self.jobs_in_queue(), timeout)
        self.kill_escaped()

    def kill_escaped(self) -> None:
        """Kill (by id) what this cluster's jobs left running once they ended. Here slurmd
        follows a job's processes by parentage (proctrack/linuxproc: no cgroups to delegate),
        and a process whose parent died first escapes it: a cancelled job's Snakemake, after
        its shell. (Clusters use proctrack/cgroup, which loses none.) They are known by the
        TMPDIR that the TaskProlog gave every task of this cluster."""
        marker = f"TMPDIR={self.root}/jobtmp/".encode()
        for entry in Path("/proc").iterdir():
            try:
                environ = (entry / "environ").read_bytes() if entry.name.isdigit() else b""
            except OSError:  # gone, or not ours to read
                continue
            if any(item.startswith(marker) for item in environ.split(b"\0")):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)

    def accounting(self) -> list[dict[str, str]]:
        """Every job of the cluster as ``sacct`` reports it (one line per job, no steps)."""
        fields = "JobIDRaw,JobName,Comment,State,AllocCPUS,ReqMem,ReqTRES,AllocTRES,"
        fields += "Account,Partition,Timelimit,Start,End"
        out = self.command("sacct", "-X", "-a", "-P", "-n", "-S", "2000-01-01", "--format", fields)
        names = fields.split(",")
        return [dict(zip(names, line.split("|"), strict=True)) for line in out.splitlines()]

    def stop(self) -> None:
        """Cancel what is left, stop every daemon (slurmd first, munged last), by its id."""
        with_controller = any(p.poll() is None for p in self.processes)
        if with_controller and shutil.which("scancel"):
            subprocess.run(["scancel", "-u", "root"], env=self.env, capture_output=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                queue = subprocess.run(
                    ["squeue", "-h", "-o", "%i"], env=self.env, capture_output=True, text=True
                )
                if queue.returncode != 0 or not queue.stdout.strip():
                    break
                time.sleep(0.5)
        self.kill_escaped()
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        for log in self.logs_open:
            log.close()


def write_configuration(root: Path, host: str) -> dict[str, str]:
    """slurm.conf, slurmdbd.conf and the TaskProlog under ``root/etc``; the environment."""
    etc = root / "etc"
    for folder in ("etc", "log", "state", "spool", "db", "jobtmp", "run"):
        (root / folder).mkdir(mode=0o700)
    for folder in (root, root / "run"):  # munged wants its socket reachable by every user
        folder.chmod(0o711)
    run = root / "run"
    node = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True)
    hardware = node.stdout.splitlines()[0].split(" ", 1)[1]  # CPUs=.. ... RealMemory=..
    ports = {name: free_port() for name in ("slurmctld", "slurmd", "slurmdbd")}
    munge = run / "munge.socket"
    (etc / "slurm.conf").write_text(
        f"""{MARKER}
ClusterName={CLUSTER}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ports["slurmctld"]}
SlurmdPort={ports["slurmd"]}
AuthType=auth/munge
AuthInfo=socket={munge}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={run}/slurmctld.pid
SlurmdPidFile={run}/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
# no systemd here to delegate cgroups: processes tracked through /proc, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={ports["slurmdbd"]}
AccountingStoragePass={munge}
AccountingStorageEnforce=associations
AccountingStoreFlags=job_comment
TaskProlog={etc}/taskprolog
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
NodeName={host} NodeAddr=127.0.0.1 {hardware} State=UNKNOWN
PartitionName={PARTITION} Nodes={host} MaxTime=04:00:00 State=UP
"""
    )
    dbd = etc / "slurmdbd.conf"
    dbd.write_text(
        f"""{MARKER}
AuthType=auth/munge
AuthInfo=socket={munge}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={ports["slurmdbd"]}
SlurmUser=root
PidFile={run}/slurmdbd.pid
LogFile={root}/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
"""
    )
    dbd.chmod(0o600)
    prolog = etc / "taskprolog"
    prolog.write_text(
        f"""#!/bin/sh
# Each job a temporary folder of its own: nothing in TMPDIR is shared between jobs.
mkdir -p {root}/jobtmp/$SLURM_JOB_ID
echo "export TMPDIR={root}/jobtmp/$SLURM_JOB_ID"
echo "unset XDG_RUNTIME_DIR"
"""
    )
    prolog.chmod(0o755)
    env = {
        **os.environ,
        "SLURM_CONF": str(etc / "slurm.conf"),
        "PATH": f"{Path(sys.executable).parent}:{SEARCH_PATH}",
    }
    return env


@contextlib.contextmanager
def one_node_cluster() -> Iterator[Cluster]:
    """The cluster, for as long as the ``with`` block runs; stopped and removed after it."""
    reason = unavailable()
    if reason:
        if os.environ.get("OCRKIE_SKIP_SLURM") == "1":
            pytest.skip(reason)
        pytest.fail(reason + " (or set OCRKIE_SKIP_SLURM=1 to skip these tests)")
    root = Path(tempfile.mkdtemp(prefix="ocrkie-slurm-"))
    made_run_slurm = not RUN_CONF.parent.exists()
    host = socket.gethostname().split(".")[0]
    cluster = Cluster(root)
    run = root / "run"
    try:
        cluster.env = write_configuration(root, host)
        (root / "munge.key").write_bytes(os.urandom(1024))
        (root / "munge.key").chmod(0o600)
        munged = ["munged", "--foreground", f"--key-file={root}/munge.key"]
        munged += [f"--socket={run}/munge.socket", f"--pid-file={run}/munged.pid"]
        munged += [f"--log-file={root}/log/munged.log", f"--seed-file={run}/munged.seed"]
        cluster.start(*munged)
        mysql = run / "mysqld.sock"
        install = ["mariadb-install-db", "--no-defaults", f"--datadir={root}/db", "--user=root"]
        made = subprocess.run(
            [*install, "--skip-test-db"], capture_output=True, text=True, timeout=120
        )
        assert made.returncode == 0, f"mariadb-install-db failed: {made.stdout}{made.stderr}"
        mariadbd = ["mariadbd", "--no-defaults", "--user=root", f"--datadir={root}/db"]
        mariadbd += [f"--socket={mysql}", "--skip-networking", f"--pid-file={run}/mysqld.pid"]
        mariadbd += [f"--log-error={root}/log/mysqld.log", "--innodb-buffer-pool-size=64M"]
        cluster.start(*mariadbd)
        cluster.wait_for("MariaDB starts", mysql.exists)
        cluster.wait_for("munged starts", (run / "munge.socket").exists)
        # slurmdbd reads slurmdbd.conf beside SLURM_CONF; the client library, MYSQL_UNIX_PORT
        cluster.start("slurmdbd", "-D", env={**cluster.env, "MYSQL_UNIX_PORT": str(mysql)})

        def accounting_up() -> bool:
            listed = subprocess.run(
                ["sacctmgr", "-n", "list", "cluster"], env=cluster.env, capture_output=True
            )
            return listed.returncode == 0

        cluster.wait_for("slurmdbd starts", accounting_up)
        cluster.command("sacctmgr", "-i", "add", "cluster", CLUSTER)
        cluster.command("sacctmgr", "-i", "add", "account", ACCOUNT, "Description=scans")
        cluster.command("sacctmgr", "-i", "add", "user", "root", f"Account={ACCOUNT}")
        cluster.start("slurmctld", "-D")
        cluster.start("slurmd", "-D", "-N", host)

        def node_idle() -> bool:
            state = subprocess.run(
                ["sinfo", "-h", "-n", host, "-o", "%T"],
                env=cluster.env,
                capture_output=True,
                text=True,
            )
            return state.stdout.strip() == "idle"

        cluster.wait_for("the node becomes idle", node_idle)
        RUN_CONF.parent.mkdir(parents=True, exist_ok=True)
        RUN_CONF.symlink_to(root / "etc")
        yield cluster
    finally:
        cluster.stop()
        if RUN_CONF.is_symlink() and os.readlink(RUN_CONF) == str(root / "etc"):
            RUN_CONF.unlink()
        if made_run_slurm:
            shutil.rmtree(RUN_CONF.parent, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


# -- one run, killed midway and resumed --------------------------------------------------------


def slurm_workdir(root: Path, images: list[Path]) -> Workdir:
    """A working directory with the workflow and the profile as a user fills it in."""
    workdir = make_workdir(root, images)
    (workdir.path / "profiles").unlink()
    shutil.copytree(PROFILE_DIR, workdir.path / "profiles" / "slurm")
    config = workdir.path / "profiles" / "slurm" / "config.yaml"
    text = config.read_text()
    text = re.sub(r"^(\s+slurm_account:) CHANGE-ME", rf"\1 {ACCOUNT}", text, flags=re.M)
    text = re.sub(r"^(\s+slurm_partition:) CHANGE-ME", rf"\1 {PARTITION}", text, flags=re.M)
    config.write_text(text)
    return workdir


def snakemake(*args: str) -> list[str]:
    command = [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm"]
    return [*command, "--slurm-init-seconds-before-status-checks", "1", *args]


def run(cluster: Cluster, workdir: Workdir, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        snakemake(*args),
        cwd=workdir.path,
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    log = workdir.path / f"snakemake-{len(list(workdir.path.glob('snakemake-*.log')))}.log"
    log.write_text(done.stdout)
    return done


def run_id(output: str) -> str:
    """The plugin's id of a run: every SLURM job of the run has it as its name."""
    return re.search(r"^SLURM run ID: (\S+)$", output, re.M)[1]


def rule_of(job: dict[str, str]) -> str:
    return re.match(r"rule_([a-z_]+?)(_wildcards_|$)", job["Comment"])[1]


def megabytes(memory: str) -> int:
    number, unit = float(memory[:-1]), memory[-1]
    return int(number * {"M": 1, "G": 1024, "T": 1024 * 1024}[unit])


def manifests(workdir: Workdir, stage: str) -> list[dict[str, Any]]:
    folder = workdir.results / "shards" / stage
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


EXTRACT_RATE = 0.5  # requests per second to Information Extraction, for all jobs together


@dataclass
class Resumed:
    workdir: Workdir
    args: tuple[str, ...]
    killed: str  # the run ids
    resumed: str
    output: str  # of the resumed run
    read_before: dict[str, dict[str, Any]]  # OCR records written before the kill
    upstage: dict[str, Any]  # what the (fake) Upstage service saw


def killed_and_resumed(cluster: Cluster, root: Path) -> Resumed:
    """The bundled samples through sbatch: OCR by the local engine, KIE by the (fake) Upstage
    API. Once the first image is read, the Snakemake on the login node is killed (kill -9) and,
    as docs/slurm.md says, the dead run's jobs cancelled (scancel --name <its run id>), which
    stops both OCR shards midway. Then its --unlock and --rerun-incomplete."""
    workdir = slurm_workdir(root, SAMPLE_IMAGES)
    args = ("--config", "input_dir=scans", "shard_size=3", "--jobs", "2", "--cores", "2")
    key = "up_slurm_test_key_71c2"
    env = cluster.env
    with FakeUpstage(api_key=key) as upstage:
        upstage.register_dir(REPO / "resources" / "samples")
        extract = {"base_url": upstage.url, "rate_limits": {"information-extract": EXTRACT_RATE}}
        settings = {"kie_backend": "upstage", "upstage": extract}
        (workdir.path / "upstage.yaml").write_text(yaml.safe_dump(settings))
        args = (*args, "--configfile", "profiles/slurm/workflow-config.yaml", "upstage.yaml")
        cluster.env = {**env, "UPSTAGE_API_KEY": key}  # sbatch --export=ALL: the jobs see it
        try:
            killed_log = workdir.path / "killed.log"
            with killed_log.open("w") as log:
                main = subprocess.Popen(
                    snakemake(*args),
                    cwd=workdir.path,
                    env=cluster.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
                deadline = time.monotonic() + 180
                while not list((workdir.results / "ocr").glob("*.json")):
                    if main.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"no image read:\n{killed_log.read_text()[-3000:]}")
                    time.sleep(0.1)
                os.killpg(main.pid, signal.SIGKILL)
                main.wait()
            killed = run_id(killed_log.read_text())
            cluster.command("scancel", "--name", killed)
            cluster.wait_until_no_job_runs()
            read_before = {
                path.stem: json.loads(path.read_text())
                for path in (workdir.results / "ocr").glob("*.json")
            }
            assert run(cluster, workdir, *args, "--unlock").returncode == 0
            done = run(cluster, workdir, *args, "--rerun-incomplete")
            assert done.returncode == 0, done.stdout[-5000:]
        finally:
            cluster.env = env
        seen = upstage.stats()
    return Resumed(workdir, args, killed, run_id(done.stdout), done.stdout, read_before, seen)


def check_every_record_is_there_and_ok(resumed: Resumed) -> None:
    assert 0 < len(resumed.read_before) < len(SAMPLE_IMAGES)  # the kill came midway
    ids = {image_id(image.name) for image in SAMPLE_IMAGES}
    for stage in ("ocr", "kie"):
        records = resumed.workdir.records(stage)
        assert set(records) == ids, stage
        assert all(record["status"] == "ok" for record in records.values()), stage
    summary = json.loads((resumed.workdir.results / "summary.json").read_text())
    assert summary["failed_images"] == 0 and summary["ocr"]["cached"] == len(resumed.read_before)
    assert summary["kie"]["status"] == {"ok": len(SAMPLE_IMAGES)}


def check_nothing_read_before_the_kill_is_read_again(resumed: Resumed) -> None:
    """An image read before the kill comes from the content cache, the same record again;
    every other image is read once; each shard job loads its model once, or not at all."""
    entries = {e["id"]: e for m in manifests(resumed.workdir, "ocr") for e in m["entries"]}
    records = resumed.workdir.records("ocr")
    assert set(entries) == set(records)
    for image, entry in entries.items():
        assert entry["cached"] is (image in resumed.read_before), image
        if image in resumed.read_before:
            assert records[image]["lines"] == resumed.read_before[image]["lines"], image
    for manifest in manifests(resumed.workdir, "ocr"):
        computed = any(not entry["cached"] for entry in manifest["entries"])
        assert manifest["worker"]["started"] == int(computed), manifest["shard"]
    # and every image's fields were extracted once, by the resumed run
    assert resumed.upstage["calls_total"]["information-extract"] == len(SAMPLE_IMAGES)


def check_sacct_shows_the_jobs_with_the_resources_asked(cluster: Cluster, resumed: Resumed) -> None:
    jobs = [j for j in cluster.accounting() if j["JobName"] in (resumed.killed, resumed.resumed)]
    killed = [job for job in jobs if job["JobName"] == resumed.killed]
    done = [job for job in jobs if job["JobName"] == resumed.resumed]
    assert {rule_of(job) for job in killed} == {"ocr"}  # cut off in OCR
    assert all(job["State"].startswith("CANCELLED") for job in killed), killed
    # the rest ran on the login node (exports, tables, summary, report figures)
    assert sorted(rule_of(job) for job in done) == ["kie", "kie", "ocr", "ocr"]
    assert all(job["State"] == "COMPLETED" for job in done), done
    workflow = load_workflow_config()["resources"]["ocr"]
    defaults = load_profile()["default-resources"]
    runtime = f"{defaults['runtime'] // 60:02d}:{defaults['runtime'] % 60:02d}:00"
    for job in jobs:
        assert job["Account"] == ACCOUNT and job["Partition"] == PARTITION, job
        assert job["Timelimit"] == runtime, job
        assert "gpu" not in job["ReqTRES"] + job["AllocTRES"], job  # a cluster without GPUs
        if rule_of(job) == "ocr":  # the workflow's threads and memory for OCR
            assert int(job["AllocCPUS"]) == workflow["threads"], job
            assert megabytes(job["ReqMem"]) == workflow["mem_mb"], job
        else:  # an API job: one CPU, though no core of the run's, and the default memory
            assert job["AllocCPUS"] == "1", job
            assert megabytes(job["ReqMem"]) == defaults["mem_mb"], job


def check_api_jobs_on_several_nodes_share_one_rate_limit(
    cluster: Cluster, resumed: Resumed
) -> None:
    """The two KIE jobs ran at once, each with a temporary folder of its own (as on two
    nodes); the limiter's state in the profile's `upstage.rate_limit_dir` kept them under one
    limit together: the service saw requests one interval apart, never two at once."""
    jobs = manifests(resumed.workdir, "kie")
    started = max(datetime.fromisoformat(job["started_at"]) for job in jobs)
    finished = min(datetime.fromisoformat(job["finished_at"]) for job in jobs)
    together = (finished - started).total_seconds()
    assert len(jobs) == 2 and together > 1 / EXTRACT_RATE, together  # both sending at once
    arrivals = sorted(resumed.upstage["arrivals"]["information-extract"])
    assert len(arrivals) == len(SAMPLE_IMAGES), arrivals
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) > 0.8 / EXTRACT_RATE, arrivals  # one limit for both, not one each
    state = resumed.workdir.path / load_workflow_config()["upstage"]["rate_limit_dir"]
    assert [path.name.endswith("-information-extract.slots") for path in state.iterdir()] == [True]
    assert not list((cluster.root / "jobtmp").glob("*/ocrkie-ratelimit*"))


def check_a_second_run_has_nothing_to_do(cluster: Cluster, resumed: Resumed) -> None:
    again = run(cluster, resumed.workdir, *resumed.args)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout, again.stdout[-3000:]


def test_a_run_on_a_real_slurm_cluster_killed_midway_and_resumed(tmp_path: Path) -> None:
    """One test, so that one pytest worker starts the cluster (pytest-xdist's groups do not
    keep a module's tests on one worker with pytest 9); each check says what it checks."""
    with one_node_cluster() as cluster:
        resumed = killed_and_resumed(cluster, tmp_path / "run")
        check_every_record_is_there_and_ok(resumed)
        check_nothing_read_before_the_kill_is_read_again(resumed)
        check_sacct_shows_the_jobs_with_the_resources_asked(cluster, resumed)
        check_api_jobs_on_several_nodes_share_one_rate_limit(cluster, resumed)
        check_a_second_run_has_nothing_to_do(cluster, resumed)
