"""Start an own `modgate serve` for a hardening test: the conftest settings plus overrides."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.certs import DevPki
from tests.conftest import gateway_env
from tests.support.gateway import GatewayProcess
from tests.support.opa import OpaServer
from tests.support.postgres import ThrowawayPostgres
from tests.support.upstream import UpstreamServer


@contextmanager
def own_gateway(
    log_dir: Path,
    pki: DevPki,
    postgres: ThrowawayPostgres,
    opa: OpaServer,
    public: UpstreamServer,
    private: UpstreamServer,
    **overrides: str,
) -> Iterator[GatewayProcess]:
    """`modgate serve` over TLS on the test fixtures, with ``MODGATE_*`` ``overrides``."""
    env = {**gateway_env(pki, postgres, opa.url, public.url, private.url), **overrides}
    with GatewayProcess(env, pki.ca_cert, log_dir / "modgate.log") as process:
        yield process
