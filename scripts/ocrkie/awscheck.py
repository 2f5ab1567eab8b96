"""What can be checked on the AWS side before a run on AWS Batch, dry runs included:
credentials, the bucket of the storage prefix, the job queue and the job role. Each problem
is one line that says what is wrong and where to set it right."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from .errors import AwsSetupError
from .s3 import s3_client, split_s3_uri

PROFILE = "profiles/aws-batch/config.yaml"
EXAMPLE_ACCOUNT = "123456789012"  # the account of the profile's example values


@dataclass(frozen=True)
class BatchSettings:
    region: str | None
    queue: str | None
    role: str | None
    image: str | None

    @classmethod
    def from_arguments(cls, found: dict[str, Any]) -> BatchSettings:
        """From Snakemake's parsed command line (the profile and the variables applied)."""
        return cls(
            found.get("aws_batch_region"),
            found.get("aws_batch_job_queue"),
            found.get("aws_batch_job_role"),
            found.get("container_image"),
        )


def problems(storage_prefix: str, settings: BatchSettings, session: Any = None) -> list[str]:
    """Everything wrong that can be seen from here, one line each (empty: ready)."""
    import boto3

    session = session or boto3.Session(region_name=settings.region)
    try:
        identity = session.client("sts").get_caller_identity()
    except NoCredentialsError:
        return [
            "no AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or run where an instance role provides them"
        ]
    except (ClientError, BotoCoreError) as exc:
        return [f"the AWS credentials are refused ({_code(exc)}): check AWS_PROFILE or the keys"]
    found = _bucket_problems(storage_prefix)
    found += _queue_problems(session, settings)
    found += _role_problems(session, settings, identity.get("Account", ""))
    if (
        settings.image
        and EXAMPLE_ACCOUNT in settings.image
        and identity.get("Account") != EXAMPLE_ACCOUNT
    ):
        found.append(
            f"container-image {settings.image} is the profile's example: set the image you "
            f"pushed (docs/aws-batch.md) as container-image in {PROFILE}"
        )
    return found


def _bucket_problems(storage_prefix: str) -> list[str]:
    bucket, _ = split_s3_uri(storage_prefix)
    try:
        s3_client().head_bucket(Bucket=bucket)
    except ClientError as exc:
        where = f"set default-storage-prefix in {PROFILE} or --default-storage-prefix"
        if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
            why = f"of the storage prefix {storage_prefix} does not exist: create it"
        else:
            why = f"cannot be reached ({_code(exc)}): check its permissions"
        return [f"the bucket {bucket} {why}, or {where}"]
    return []


def _queue_problems(session: Any, settings: BatchSettings) -> list[str]:
    where = f"set aws-batch-job-queue in {PROFILE} or SNAKEMAKE_AWS_BATCH_JOB_QUEUE"
    if not settings.queue:
        return [f"no AWS Batch job queue: {where}"]
    try:
        queues = session.client("batch").describe_job_queues(jobQueues=[settings.queue])[
            "jobQueues"
        ]
    except (ClientError, BotoCoreError) as exc:
        return [f"the job queue {settings.queue} cannot be looked up ({_code(exc)}): {where}"]
    if not queues:
        return [f"the job queue {settings.queue} does not exist in {settings.region}: {where}"]
    if queues[0].get("state") != "ENABLED":
        return [
            f"the job queue {settings.queue} is {queues[0].get('state')}: enable it, or {where}"
        ]
    return []


def _role_problems(session: Any, settings: BatchSettings, account: str) -> list[str]:
    where = f"set aws-batch-job-role in {PROFILE} or SNAKEMAKE_AWS_BATCH_JOB_ROLE"
    role = settings.role or ""
    if not role.startswith("arn:aws:iam::") or ":role/" not in role:
        return [f"the job role {role or '(none)'} is not a role ARN: {where}"]
    if EXAMPLE_ACCOUNT in role and account != EXAMPLE_ACCOUNT:
        return [f"the job role {role} is the profile's example: {where}"]
    try:
        session.client("iam").get_role(RoleName=role.rsplit("/", 1)[-1])
    except ClientError as exc:
        if _code(exc) == "NoSuchEntity":
            return [f"the job role {role} does not exist: {where}"]
        # not allowed to read IAM: nothing more can be known from here
    return []


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "error"))
    return type(exc).__name__


def check_or_stop(storage_prefix: str, settings: BatchSettings) -> None:
    """Raise ``AwsSetupError`` listing every problem (meant for the submitting Snakemake)."""
    found = problems(storage_prefix, settings)
    if found:
        raise AwsSetupError("the AWS side is not ready:\n  " + "\n  ".join(found))
