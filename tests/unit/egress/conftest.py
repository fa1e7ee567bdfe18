"""A scriptable resolver (``socket.getaddrinfo`` monkeypatched) and a local HTTPS server."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.unit.egress._server import HttpsServer, running_https

#: The names the servers' certificates are made for (a fake resolver maps them to loopback).
NAMES = ["idp.test", "other-name.test", "rebind.test"]


@dataclass
class FakeDns:
    """Answers for some names (successive lookups take successive answers, the last repeats);
    every other name, and every IP literal, goes to the real resolver."""

    real: Callable[..., Any]
    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            return list(self.real(host, port, *args, **kwargs))
        self.lookups.append(name)
        script = self.answers[name]
        ips = script.pop(0) if len(script) > 1 else script[0]
        if not ips:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out: list[tuple[Any, ...]] = []
        for ip in ips:
            if ":" in ip:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, int(port), 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port))))
        return out


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns(real=socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsServer]:
    with running_https(tmp_path_factory.mktemp("egress"), ["127.0.0.1", *NAMES]) as server:
        yield server


@pytest.fixture
def server(https_server: HttpsServer) -> HttpsServer:
    https_server.routes.clear()
    https_server.seen.clear()
    https_server.sni.clear()
    return https_server
