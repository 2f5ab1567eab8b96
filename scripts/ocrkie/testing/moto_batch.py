"""Test-only AWS: a moto server on 127.0.0.1 plus a fake AWS Batch worker.

moto's "simple" Batch backend (no Docker) marks every job SUCCEEDED at once without running
it. Here ``_mark_job_as_finished`` is replaced so that each submitted job really runs: a thread
executes the job definition's ``command`` (``/bin/bash -c "..."``) in a fresh temporary folder
(the stand-in for the container) with

- ``image_env``: what the container image would provide (PATH with the venv, pip settings, ...;
  ``{workdir}`` stands for the job's folder),
- ``ambient_env``: what the AWS environment would provide (endpoint, role credentials, region),
- the job definition's ``environment`` on top, as Batch does,

then records the exit code and marks the job SUCCEEDED or FAILED. TerminateJob kills the
process group and ``timeout.attemptDurationSeconds`` is enforced, as on Batch. The output of
each job goes to a log file and to moto's CloudWatch Logs (``/aws/batch/job``).

Every RegisterJobDefinition request is recorded in ``FakeAws.registered`` (the plugin
deregisters its definitions once a job ends, so the backend state alone would not show them).
"""

from __future__ import annotations

import copy
import importlib.metadata
import inspect
import json
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from moto.batch.models import BatchBackend, Job
from moto.batch_simple.models import BatchSimpleBackend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

ACCOUNT = "123456789012"
LOG_GROUP = "/aws/batch/job"
# Credentials the fake worker hands to jobs, standing in for the job role's. Deliberately
# different from the submitting side's, so a leak of the latter is recognisable.
ROLE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "ROLEKEYID", "AWS_SECRET_ACCESS_KEY": "role-secret"}


@dataclass
class RanJob:
    """One job the fake worker ran."""

    name: str
    job_id: str
    workdir: Path
    log: Path
    returncode: int | None = None
    reason: str | None = None
    seconds: float = 0.0


@dataclass
class FakeAws:
    """A running moto server with the fake Batch worker. Use :func:`fake_aws` to start one."""

    endpoint: str
    region: str
    root: Path
    image_env: dict[str, str]
    ambient_env: dict[str, str] = field(default_factory=dict)
    registered: list[dict[str, Any]] = field(default_factory=list)
    ran: list[RanJob] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- clients ------------------------------------------------------------------------
    def client_env(self, **extra: str) -> dict[str, str]:
        """Variables for a process on the submitting side (snakemake, boto3) to reach moto."""
        return {**aws_test_env(self.endpoint, self.region), **extra}

    def client(self, service: str) -> Any:
        env = self.client_env()
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )

    # -- infrastructure -----------------------------------------------------------------
    def create_batch(self, queue: str = "ocrkie-test-queue") -> tuple[str, str]:
        """An unmanaged compute environment and a job queue; returns (queue ARN, role ARN)."""
        iam = self.client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        role = iam.create_role(RoleName=f"{queue}-job", AssumeRolePolicyDocument=json.dumps(trust))
        batch = self.client("batch")
        env = batch.create_compute_environment(
            computeEnvironmentName=f"{queue}-ce",
            type="UNMANAGED",
            state="ENABLED",
            serviceRole=role["Role"]["Arn"],
        )
        created = batch.create_job_queue(
            jobQueueName=queue,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[
                {"order": 1, "computeEnvironment": env["computeEnvironmentArn"]}
            ],
        )
        return created["jobQueueArn"], role["Role"]["Arn"]

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        s3 = self.client("s3")
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def bucket_exists(self, bucket: str) -> bool:
        return bucket in {b["Name"] for b in self.client("s3").list_buckets()["Buckets"]}

    def job_log_text(self) -> str:
        """Everything all jobs printed (from the local log files)."""
        logs = [job.log for job in self.ran if job.log.exists()]
        return "\n".join(log.read_text(errors="replace") for log in logs)

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Wait until every job the worker started has finished (orphans included)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- the fake worker ----------------------------------------------------------------
    def _job_env(self, job: Job, workdir: Path) -> dict[str, str]:
        """Image, then AWS, then job definition variables; ``{workdir}`` in image values is
        the job's folder (the image's WORKDIR)."""
        image = {k: v.replace("{workdir}", str(workdir)) for k, v in self.image_env.items()}
        declared = job._get_container_property("environment", [])
        return {**image, **self.ambient_env, **{item["name"]: item["value"] for item in declared}}

    def _start(self, backend: BatchSimpleBackend, job: Job) -> None:
        """Replacement for ``BatchSimpleBackend._mark_job_as_finished``."""
        backend.backend._jobs[job.job_id] = job
        job.job_started_at = datetime.now()
        job.log_stream_name = job._stream_name
        job._start_attempt()
        job.status = "RUNNING"  # moto's state machine stops at RUNNING; we end the job
        thread = threading.Thread(target=self._run, args=(job,), daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _run(self, job: Job) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="job-", dir=self.root))
        ran = RanJob(job.job_name, job.job_id, workdir, workdir.with_suffix(".log"))
        with self._lock:
            self.ran.append(ran)
        command = job.job_definition.container_properties["command"]
        timeout = (job.timeout or job.job_definition.timeout or {}).get("attemptDurationSeconds")
        started = time.monotonic()
        with ran.log.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=self._job_env(job, workdir),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, so kills reach pip/snakemake
            )
            ran.returncode, ran.reason = _supervise(process, job, started, timeout)
        ran.seconds = time.monotonic() - started
        self._to_cloudwatch(job, ran.log)
        job.exit_code = ran.returncode
        if ran.reason:
            job.job_stopped_reason = ran.reason
        job._mark_stopped(success=ran.returncode == 0)

    def _to_cloudwatch(self, job: Job, log: Path) -> None:
        logs = job._log_backend
        now = int(time.time() * 1000)
        lines = log.read_text(errors="replace").splitlines() or ["(no output)"]
        events = [{"timestamp": now, "message": line[:10000]} for line in lines[-5000:]]
        logs.ensure_log_group(LOG_GROUP)
        logs.ensure_log_stream(LOG_GROUP, job._stream_name)
        logs.put_log_events(LOG_GROUP, job._stream_name, events)


def _supervise(
    process: subprocess.Popen[bytes], job: Job, started: float, timeout: int | None
) -> tuple[int, str | None]:
    """Wait for the job's process; kill it on TerminateJob or when its timeout passes."""
    while process.poll() is None:
        reason = None
        if job.stop:
            reason = job.job_stopped_reason or "Terminated"
        elif timeout and time.monotonic() - started > timeout:
            reason = "Job attempt duration exceeded timeout"
        if reason:
            _kill_group(process)
            return 137, reason
        time.sleep(0.2)
    return process.returncode, None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _recording(original: Callable[..., Any], sink: list[dict[str, Any]]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    def register_job_definition(*args: Any, **kwargs: Any) -> Any:
        request = signature.bind(*args, **kwargs).arguments
        request.pop("self", None)
        sink.append(copy.deepcopy(request))
        return original(*args, **kwargs)

    return register_job_definition


def _post_json(url: str, payload: Mapping[str, Any]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        reply.read()


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 at an ephemeral port; yields its endpoint URL.

    moto keeps its state per process, shared by all servers in it: use unique names.
    """
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_test_env(endpoint: str, region: str = "us-east-1") -> dict[str, str]:
    """Variables that point boto3 at moto, with dummy credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@contextmanager
def fake_aws(
    root: Path,
    image_env: Mapping[str, str],
    region: str = "us-east-1",
) -> Iterator[FakeAws]:
    """Start moto on 127.0.0.1 with the fake Batch worker; stop both after."""
    with moto_server() as endpoint, _fake_batch(root, image_env, region, endpoint) as aws:
        yield aws


@contextmanager
def _fake_batch(
    root: Path, image_env: Mapping[str, str], region: str, endpoint: str
) -> Iterator[FakeAws]:
    aws = FakeAws(endpoint=endpoint, region=region, root=root, image_env=dict(image_env))
    aws.ambient_env = {
        "AWS_ENDPOINT_URL": aws.endpoint,  # on AWS: the real endpoints
        "AWS_DEFAULT_REGION": region,  # on Batch the job's region is known
        **ROLE_CREDENTIALS,  # on Batch: the job role's temporary credentials
    }
    saved = (BatchSimpleBackend._mark_job_as_finished, BatchBackend.register_job_definition)
    BatchSimpleBackend._mark_job_as_finished = lambda backend, include_start_attempt, job: (
        aws._start(backend, job)
    )
    BatchBackend.register_job_definition = _recording(saved[1], aws.registered)
    try:
        _post_json(f"{aws.endpoint}/moto-api/config", {"batch": {"use_docker": False}})
        yield aws
    finally:
        aws.wait_idle(timeout=60)
        BatchSimpleBackend._mark_job_as_finished, BatchBackend.register_job_definition = saved


def wheel_from_installed(distribution: str, dest: Path) -> Path:
    """Repack an installed pure-Python distribution as a wheel (offline), into ``dest``.

    The container image keeps a wheel of the S3 storage plugin so that the
    ``pip install --target .snakemake/pip-deployments snakemake-storage-plugin-s3`` which
    Snakemake prepends to every job is satisfied locally; this builds the same for tests.
    """
    dist = importlib.metadata.distribution(distribution)
    name = dist.metadata["Name"].replace("-", "_")
    wheel = dest / f"{name}-{dist.version}-py3-none-any.whl"
    dest.mkdir(parents=True, exist_ok=True)
    skipped = ("INSTALLER", "REQUESTED", "direct_url.json")
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in dist.files or []:
            text = entry.as_posix()
            if text.startswith("..") or "__pycache__" in text or text.endswith(skipped):
                continue
            archive.write(entry.locate(), text)
    return wheel
