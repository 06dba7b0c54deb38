"""Fixtures of the hardening tests: a `modgate serve` of a test's own, with overrides."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

from gateway.certs import DevPki
from tests.conftest import gateway_env
from tests.support.gateway import GatewayProcess
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer

ServeOwn = Callable[..., AbstractContextManager[GatewayProcess]]


@pytest.fixture
def serve_own(
    tmp_path: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa_server: OpaServer,
    public_upstream: UpstreamServer,
    private_upstream: UpstreamServer,
) -> ServeOwn:
    """``with serve_own(MODGATE_AUDIT_TIMEOUT_S="1") as gateway:``: `modgate serve` over TLS
    on the session's PostgreSQL, OPA and upstreams, with the given ``MODGATE_*`` settings
    (and ``probe_cert``, the client certificate its start-up probe presents, if needed;
    ``config``, a TOML settings file)."""

    @contextmanager
    def serve(
        probe_cert: tuple[Path, Path] | None = None,
        config: Path | None = None,
        **overrides: str,
    ) -> Iterator[GatewayProcess]:
        env = {
            **gateway_env(pki, postgres, opa_server.url, public_upstream.url, private_upstream.url),
            **overrides,
        }
        log = tmp_path / "modgate.log"
        with GatewayProcess(env, pki.ca_cert, log, probe_cert, config) as process:
            yield process

    return serve
