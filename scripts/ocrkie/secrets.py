"""Resolving the Upstage API key without putting it where it can leak.

Order: ``UPSTAGE_API_KEY`` (local runs); else the SSM SecureString named by
``UPSTAGE_API_KEY_SSM_PARAMETER``; else the Secrets Manager secret named by
``UPSTAGE_API_KEY_SECRET_ID``. On AWS Batch only the *name* travels (container image default or
``--envvars``); the key is read at run time with the job role, so it never appears in a job
definition, a command line or a log. Nothing here logs or echoes the value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from .errors import AuthenticationError
from .s3 import aws_region

KEY_VAR = "UPSTAGE_API_KEY"
SSM_VAR = "UPSTAGE_API_KEY_SSM_PARAMETER"
SECRET_VAR = "UPSTAGE_API_KEY_SECRET_ID"
_JSON_FIELDS = (KEY_VAR, "api_key", "apiKey")  # a key/value secret may hold it under these
_ENDPOINT_VARS = {
    "ssm": "AWS_ENDPOINT_URL_SSM",
    "secretsmanager": "AWS_ENDPOINT_URL_SECRETS_MANAGER",
}


def _client(service: str, name: str, env: Mapping[str, str]) -> Any:
    # A full ARN names its region (arn:aws:ssm:eu-west-1:...); a bare name uses the job's.
    arn_parts = name.split(":")
    region = arn_parts[3] if name.startswith("arn:") and len(arn_parts) > 4 else aws_region(env)
    endpoint = env.get(_ENDPOINT_VARS[service]) or env.get("AWS_ENDPOINT_URL") or None
    return boto3.client(service, region_name=region, endpoint_url=endpoint)


def _from_ssm(name: str, env: Mapping[str, str]) -> str:
    reply = _client("ssm", name, env).get_parameter(Name=name, WithDecryption=True)
    return reply["Parameter"]["Value"]


def _from_secrets_manager(secret_id: str, env: Mapping[str, str]) -> str:
    reply = _client("secretsmanager", secret_id, env).get_secret_value(SecretId=secret_id)
    text = reply.get("SecretString")
    if text is None:
        text = reply["SecretBinary"].decode("utf-8")
    return _unwrap_json(text)


def _unwrap_json(text: str) -> str:
    """A secret stored as ``{"UPSTAGE_API_KEY": "..."}`` yields the field; plain text as is."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        fields = json.loads(text)
    except ValueError:
        return text
    for field in _JSON_FIELDS:
        if isinstance(fields.get(field), str):
            return fields[field]
    raise AuthenticationError(
        f"the Upstage API key secret is JSON without any of the fields {', '.join(_JSON_FIELDS)}"
    )


def _fetch(source: str, name: str, env: Mapping[str, str]) -> str:
    reader = _from_ssm if source == SSM_VAR else _from_secrets_manager
    try:
        value = reader(name, env).strip()
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "error")
        raise AuthenticationError(
            f"cannot read the Upstage API key from {source}={name!r}: {code}. Check the name, "
            "the region, and that the job role may read it (and decrypt it with its KMS key)."
        ) from None
    except BotoCoreError as error:  # no credentials, no region, endpoint unreachable
        raise AuthenticationError(
            f"cannot read the Upstage API key from {source}={name!r}: {error}"
        ) from None
    if not value:
        raise AuthenticationError(f"the Upstage API key in {source}={name!r} is empty")
    return value


NO_KEY = (
    "no Upstage API key: set one of UPSTAGE_API_KEY (the key itself, local runs only), "
    "UPSTAGE_API_KEY_SSM_PARAMETER (name of an SSM SecureString parameter) or "
    "UPSTAGE_API_KEY_SECRET_ID (name or ARN of a Secrets Manager secret)"
)


def has_upstage_key(env: Mapping[str, str] = os.environ) -> bool:
    """Whether one of the three variables names a key (not whether the service accepts it)."""
    return any(env.get(var, "").strip() for var in (KEY_VAR, SSM_VAR, SECRET_VAR))


def resolve_upstage_key(env: Mapping[str, str] = os.environ) -> str:
    """The Upstage API key, from the environment, SSM Parameter Store or Secrets Manager."""
    direct = env.get(KEY_VAR, "").strip()
    if direct:
        return direct
    for source in (SSM_VAR, SECRET_VAR):
        name = env.get(source, "").strip()
        if name:
            return _fetch(source, name, env)
    raise AuthenticationError(NO_KEY)
