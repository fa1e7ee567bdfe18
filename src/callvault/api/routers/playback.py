"""Signed playback URLs: the one /v1 route without a bearer key.

The URL itself is the credential (``calls/_playback_url.py``): short-lived,
one tenant, one call, one view, signed with the tenant's key. Using it loads
the minting principal as it is now and passes the gate again (audited,
committed) before the first byte.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse

from callvault.api.blocking import run_blocking
from callvault.calls._listen import play_by_url
from callvault.calls._playback_url import MAX_TOKEN_CHARS
from callvault.runtime import Runtime

router = APIRouter(prefix="/v1/playback", tags=["calls"])

Token = Annotated[
    str, Path(pattern=r"^pb1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$", max_length=MAX_TOKEN_CHARS)
]


@router.get(
    "/{token}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"audio/wav": {}}},
        206: {"content": {"audio/wav": {}}},
        401: {"description": "Invalid or expired URL."},
    },
)
async def play(token: Token, request: Request) -> StreamingResponse:
    """The recording the URL was minted for, as WAV (``Range`` supported)."""
    rt: Runtime = request.app.state.runtime
    range_header = request.headers.get("range")
    played = await run_blocking(rt, lambda: play_by_url(rt, token, range_header))
    return StreamingResponse(
        played.body, status_code=played.status, headers=played.headers, media_type="audio/wav"
    )
