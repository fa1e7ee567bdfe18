"""Where a route's blocking work runs: on the event loop, or in a worker thread.

Route bodies are plain functions that use the database synchronously. With
the embedded SQLite database a query is an in-process call of microseconds:
running the body on the event loop avoids two thread hand-offs per request
and the GIL contention between worker threads, which measured as the larger
cost (bench/api.py: 283 → 583 req/s on the same machine; docs/adr/0006).
With PostgreSQL a query waits on the network, so the body runs in a worker
thread and the loop stays free.

Bodies are atomic with respect to each other on the loop (they contain no
``await``), so in-process SQLite lock waits cannot happen there.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from anyio import to_thread

from callvault.runtime import Runtime

P = ParamSpec("P")
R = TypeVar("R")


async def run_blocking(rt: Runtime, fn: Callable[[], R]) -> R:
    """Run ``fn`` inline for the embedded database, else in a worker thread."""
    if rt.db.is_sqlite:
        return fn()
    return await to_thread.run_sync(fn)


def blocking(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """Decorate a route body that takes ``ctx`` (a :class:`~callvault.api.deps.Ctx`).

    The body runs only after the request's API key has been authenticated
    (:meth:`~callvault.api.deps.Ctx.run`). FastAPI reads the parameters and
    annotations of the wrapped function.
    """

    @functools.wraps(fn)
    async def route(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = kwargs["ctx"]
        # Ctx.run authenticates the key first, in the transaction the body continues.
        call = functools.partial(ctx.run, fn, args, kwargs)  # type: ignore[attr-defined]
        return await run_blocking(ctx.rt, call)  # type: ignore[attr-defined]

    return route
