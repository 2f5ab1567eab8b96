"""Resolving the Upstage API key: environment, SSM SecureString, Secrets Manager (moto)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import boto3
import pytest

from ocrkie import secrets
from ocrkie.errors import AuthenticationError, FatalError
from ocrkie.secrets import resolve_upstage_key
from ocrkie.testing.moto_batch import aws_test_env, moto_server

pytestmark = pytest.mark.xdist_group("moto")

KEY = "up_TESTKEY_0123456789abcdef"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Credentials in the process environment (as boto3 finds them); the rest is passed."""
    values = aws_test_env(endpoint)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.setenv(name, values[name])
    for name in (secrets.KEY_VAR, secrets.SSM_VAR, secrets.SECRET_VAR):
        monkeypatch.delenv(name, raising=False)
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _ssm(endpoint: str, region: str = "us-east-1"):
    return boto3.client("ssm", endpoint_url=endpoint, region_name=region)


def _secretsmanager(endpoint: str):
    return boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")


def test_the_environment_variable_wins_without_any_aws_call(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_aws(*args, **kwargs):
        raise AssertionError("AWS was called although UPSTAGE_API_KEY is set")

    monkeypatch.setattr(secrets.boto3, "client", no_aws)
    both = {**env, secrets.KEY_VAR: f"  {KEY}\n", secrets.SSM_VAR: "/x", secrets.SECRET_VAR: "y"}
    assert resolve_upstage_key(both) == KEY


def test_ssm_secure_string_is_decrypted(env: dict[str, str]) -> None:
    name = f"/ocrkie/{_unique('key')}"
    _ssm(env["AWS_ENDPOINT_URL"]).put_parameter(Name=name, Value=KEY + "\n", Type="SecureString")
    assert resolve_upstage_key({**env, secrets.SSM_VAR: name}) == KEY


def test_ssm_parameter_arn_names_its_region(env: dict[str, str]) -> None:
    name = f"/ocrkie/{_unique('key')}"
    client = _ssm(env["AWS_ENDPOINT_URL"], "eu-west-1")
    client.put_parameter(Name=name, Value=KEY, Type="SecureString")
    arn = client.get_parameter(Name=name)["Parameter"]["ARN"]
    assert ":eu-west-1:" in arn
    # The job's own region is us-east-1, where the parameter does not exist.
    assert resolve_upstage_key({**env, secrets.SSM_VAR: arn}) == KEY


def test_ssm_comes_before_secrets_manager(env: dict[str, str]) -> None:
    name = f"/ocrkie/{_unique('key')}"
    _ssm(env["AWS_ENDPOINT_URL"]).put_parameter(Name=name, Value=KEY, Type="SecureString")
    chosen = {**env, secrets.SSM_VAR: name, secrets.SECRET_VAR: "never-read"}
    assert resolve_upstage_key(chosen) == KEY


@pytest.mark.parametrize(
    "stored",
    [KEY, json.dumps({"UPSTAGE_API_KEY": KEY, "other": "x"}), json.dumps({"api_key": KEY})],
)
def test_secrets_manager_plain_or_key_value(env: dict[str, str], stored: str) -> None:
    secret_id = _unique("ocrkie/upstage")
    _secretsmanager(env["AWS_ENDPOINT_URL"]).create_secret(Name=secret_id, SecretString=stored)
    assert resolve_upstage_key({**env, secrets.SECRET_VAR: secret_id}) == KEY


def test_nothing_configured_names_all_three_options(env: dict[str, str]) -> None:
    with pytest.raises(AuthenticationError) as caught:
        resolve_upstage_key(env)
    message = str(caught.value)
    for name in ("UPSTAGE_API_KEY", "UPSTAGE_API_KEY_SSM_PARAMETER", "UPSTAGE_API_KEY_SECRET_ID"):
        assert name in message
    assert isinstance(caught.value, FatalError)  # stops the job instead of failing each image


def test_missing_parameter_is_a_clear_authentication_error(env: dict[str, str]) -> None:
    name = f"/ocrkie/{_unique('absent')}"
    with pytest.raises(AuthenticationError, match="ParameterNotFound") as caught:
        resolve_upstage_key({**env, secrets.SSM_VAR: name})
    assert name in str(caught.value)


def test_unusable_secrets_never_echo_the_value(env: dict[str, str]) -> None:
    secret_id = _unique("ocrkie/json")
    stored = json.dumps({"token": KEY})
    _secretsmanager(env["AWS_ENDPOINT_URL"]).create_secret(Name=secret_id, SecretString=stored)
    with pytest.raises(AuthenticationError) as caught:
        resolve_upstage_key({**env, secrets.SECRET_VAR: secret_id})
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)


def test_empty_value_is_refused(env: dict[str, str]) -> None:
    name = f"/ocrkie/{_unique('blank')}"
    _ssm(env["AWS_ENDPOINT_URL"]).put_parameter(Name=name, Value=" ", Type="SecureString")
    with pytest.raises(AuthenticationError, match="empty"):
        resolve_upstage_key({**env, secrets.SSM_VAR: name})


def test_no_region_anywhere_is_reported(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    bare = {"AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"], secrets.SSM_VAR: "/ocrkie/k"}
    with pytest.raises(AuthenticationError, match="region"):
        resolve_upstage_key(bare)


def test_region_from_the_storage_plugin_setting(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In a Batch job the profile's storage-s3-region arrives as SNAKEMAKE_STORAGE_S3_REGION.
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    name = f"/ocrkie/{_unique('key')}"
    _ssm(env["AWS_ENDPOINT_URL"], "ap-southeast-2").put_parameter(
        Name=name, Value=KEY, Type="SecureString"
    )
    job_env = {
        "AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"],
        "SNAKEMAKE_STORAGE_S3_REGION": "ap-southeast-2",
        secrets.SSM_VAR: name,
    }
    assert resolve_upstage_key(job_env) == KEY
