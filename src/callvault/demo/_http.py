"""Where the demo's server is, with which key, and a small JSON client for its API.

The server, its CA and the owner's key are found as the other API commands
find them (``callvault.client``): ``--url`` / ``CALLVAULT_URL`` (default the
local server of the settings), ``--ca`` / ``CALLVAULT_CA_FILE`` (default the
data directory's self-signed certificate), ``--key-file`` /
``CALLVAULT_API_KEY``. Errors name the problem and the status, never a
request or response body.
"""

from __future__ import annotations

import os
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import httpx

from callvault import errors
from callvault.config import Settings

_BY_STATUS: Final[dict[int, type[errors.Error]]] = {
    401: errors.AuthenticationError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    422: errors.InvalidInputError,
    503: errors.UnavailableError,
}
_MAX_KEY_FILE_BYTES: Final = 4096
_READY_POLL_S: Final = 0.25
NO_KEY: Final = (
    "no owner API key: set CALLVAULT_API_KEY to the key `callvault init` printed, "
    "or pass --key-file FILE"
)


@dataclass(frozen=True, slots=True)
class Target:
    """The server to seed and the owner key to seed it with (the key never in a repr)."""

    url: str
    ca: Path
    key: str = field(repr=False)

    @property
    def ws_url(self) -> str:
        return "wss://" + self.url.removeprefix("https://")

    def context(self) -> ssl.SSLContext:
        try:
            ctx = ssl.create_default_context(cafile=str(self.ca))
        except (OSError, ssl.SSLError):
            raise errors.ConfigError(
                f"cannot load CA file {self.ca} (give --ca or CALLVAULT_CA_FILE)",
                field="CALLVAULT_CA_FILE",
            ) from None
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        return ctx


def resolve_target(
    settings: Settings, *, url: str | None, ca: Path | None, key_file: Path | None
) -> Target:
    """The target from the options, else the environment, else the local defaults."""
    if key_file is not None:
        try:
            with key_file.open("rb") as f:
                raw = f.read(_MAX_KEY_FILE_BYTES + 1)
        except OSError:
            raise errors.ConfigError(
                f"cannot read --key-file {key_file}", field="key_file"
            ) from None
        if len(raw) > _MAX_KEY_FILE_BYTES:
            raise errors.ConfigError("--key-file is too large for an API key", field="key_file")
        key = raw.decode("utf-8", "replace").strip()
    else:
        key = os.environ.get("CALLVAULT_API_KEY", "").strip()
    if not key:
        raise errors.ConfigError(NO_KEY, field="CALLVAULT_API_KEY")
    host = settings.host if settings.host not in {"0.0.0.0", "::"} else "127.0.0.1"  # noqa: S104 - mapping a wildcard listen address to a connectable one
    base = (url or os.environ.get("CALLVAULT_URL") or f"https://{host}:{settings.port}").rstrip("/")
    if not base.startswith("https://"):
        raise errors.InvalidInputError("--url must be an https:// URL (TLS only)", field="url")
    cafile = ca or Path(
        os.environ.get("CALLVAULT_CA_FILE") or settings.data_dir / "tls" / "cert.pem"
    )
    return Target(url=base, ca=cafile, key=key)


def wait_ready(target: Target, wait_s: float) -> None:
    """Return once the server answers ``/readyz`` with 200; try until ``wait_s`` has passed."""
    deadline = time.monotonic() + wait_s
    while True:
        problem = _ready_problem(target)
        if problem is None:
            return
        if time.monotonic() >= deadline:
            raise errors.UnavailableError(
                f"the server at {target.url} is not ready ({problem}): is callvault serve running?"
            )
        time.sleep(_READY_POLL_S)


def _ready_problem(target: Target) -> str | None:
    if not target.ca.exists():
        return f"no CA file {target.ca} yet"
    try:
        with httpx.Client(verify=target.context(), timeout=5.0) as c:
            resp = c.get(f"{target.url}/readyz")
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return None if resp.status_code == 200 else f"/readyz answered {resp.status_code}"


class Api:
    """JSON over HTTPS with one bearer key; callvault errors for failures."""

    def __init__(self, target: Target, key: str, context: ssl.SSLContext) -> None:
        self.url = target.url
        self._client = httpx.Client(
            base_url=target.url,
            headers={"Authorization": f"Bearer {key}"},
            verify=context,
            timeout=30.0,
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client.close()

    def get(self, path: str, params: dict[str, str] | None = None) -> Any:
        return self._send("GET", path, params=params).json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._send("POST", path, body=body).json()

    def status(self, path: str, params: dict[str, str] | None = None) -> int:
        """Only the status of a GET (the body, if any, is read and dropped)."""
        try:
            return self._client.get(path, params=params).status_code
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None

    def fetch(self, path: str, params: dict[str, str] | None = None) -> bytes:
        """The raw body of a GET (a recording)."""
        return self._send("GET", path, params=params).content

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        try:
            resp = self._client.request(method, path, params=params, json=body)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from None
        if resp.status_code >= 400:
            try:
                problem = resp.json()
                detail = problem.get("detail") or problem.get("title")
            except (ValueError, AttributeError):
                detail = None
            cls = _BY_STATUS.get(resp.status_code, errors.Error)
            raise cls(f"API answered {resp.status_code}: {detail or resp.reason_phrase}")
        return resp

    def _unreachable(self, exc: httpx.HTTPError) -> errors.UnavailableError:
        return errors.UnavailableError(f"cannot reach the API at {self.url}: {type(exc).__name__}")
