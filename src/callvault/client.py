"""A small HTTPS client for the CLI's API commands."""

from __future__ import annotations

import os
import ssl
from typing import Any

import httpx

from callvault import errors
from callvault.config import Settings

_BY_STATUS: dict[int, type[errors.Error]] = {
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    422: errors.InvalidInputError,
    503: errors.UnavailableError,
}


class ApiClient:
    def __init__(self, base_url: str, token: str, verify: ssl.SSLContext) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.context = verify
        self._client = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            verify=verify,
            timeout=30.0,
        )

    @classmethod
    def from_env(cls, settings: Settings) -> ApiClient:
        """Read ``CALLVAULT_URL`` (default: the local server), ``CALLVAULT_API_KEY`` and
        ``CALLVAULT_CA_FILE`` (default: the data directory's self-signed certificate)."""
        token = os.environ.get("CALLVAULT_API_KEY")
        if not token:
            raise errors.ConfigError(
                "set CALLVAULT_API_KEY to an API key", field="CALLVAULT_API_KEY"
            )
        url = os.environ.get("CALLVAULT_URL") or f"https://{settings.host}:{settings.port}"
        ca = os.environ.get("CALLVAULT_CA_FILE") or str(settings.data_dir / "tls" / "cert.pem")
        try:
            ctx = ssl.create_default_context(cafile=ca)
        except (OSError, ssl.SSLError):
            raise errors.ConfigError(
                f"cannot load CA file {ca}", field="CALLVAULT_CA_FILE"
            ) from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        return cls(url, token, ctx)

    def request(self, method: str, path: str, params: dict[str, str] | None = None) -> Any:
        try:
            resp = self._client.request(method, path, params=params)
        except httpx.HTTPError as exc:
            raise errors.UnavailableError(f"cannot reach the API: {type(exc).__name__}") from None
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail") or resp.json().get("title")
            except ValueError:
                detail = None
            cls = _BY_STATUS.get(resp.status_code, errors.Error)
            raise cls(f"API answered {resp.status_code}: {detail or resp.reason_phrase}")
        return resp.json()
