"""One way to build a boto3 client: explicit credentials or the default chain, bounded
timeouts and retries. Shared by the ``aws-kms`` key provider and the S3 object store."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

try:
    import boto3
    from botocore.config import Config
except ImportError:  # the aws extra is not installed: callers say what to install
    boto3 = None


def client(
    service: str,
    *,
    region: str,
    endpoint_url: str | None,
    session: Any,
    access_key_id: str | None,
    secret_access_key: SecretStr | None,
    session_token: SecretStr | None,
    connect_timeout_seconds: float,
    read_timeout_seconds: float,
    max_attempts: int,
    **config: Any,
) -> Any:
    """A ``service`` client in ``region``; raises ValueError for contradictory credentials."""
    if boto3 is None:  # pragma: no cover - guarded by the callers' own checks
        raise ValueError("boto3 is not installed")
    if session is not None and access_key_id is not None:
        raise ValueError("pass either a boto3 session or access keys, not both")
    if session is None:
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key.get_secret_value()
            if secret_access_key
            else None,
            aws_session_token=session_token.get_secret_value() if session_token else None,
            region_name=region,
        )
    bounds = Config(
        connect_timeout=connect_timeout_seconds,
        read_timeout=read_timeout_seconds,
        retries={"total_max_attempts": max(1, max_attempts), "mode": "standard"},
        user_agent_extra="callvault",
        **config,
    )
    return session.client(service, region_name=region, endpoint_url=endpoint_url, config=bounds)
