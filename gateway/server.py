"""uvicorn wiring: modgate's protocol class (limits, TLS), uvloop, one process, and the
metrics listener beside it.

uvicorn gets no certificate: TLS is started by the protocol class itself, so the connection
limit and the header deadline cover the handshake (``gateway/http/protocol.py``).

uvicorn gets no logging configuration either (``log_config=None``): its lines go through
the root handler ``logs.configure`` set up, in the format chosen there.

The metrics listener (``metrics.listen``, loopback by default) is prometheus-client's own
small HTTP server on a thread of its own: plain http, no credentials, so whoever can reach
the address can read the counters. It reads the same registry as ``/metrics`` on the main
port, and stops with the gateway.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from wsgiref.simple_server import WSGIServer

import uvicorn
from prometheus_client import start_http_server
from starlette.types import ASGIApp

from .app import build_app
from .errors import ConfigError
from .http.protocol import protocol_class
from .http.tls import server_context
from .logs import LEVELS
from .observability import Metrics
from .settings import Settings, listen_address

log = logging.getLogger(__name__)


def uvicorn_config(settings: Settings, app: ASGIApp, metrics: Metrics) -> uvicorn.Config:
    """The uvicorn configuration `modgate serve` runs ``app`` with."""
    tls_context = None if settings.tls.plain_http else server_context(settings.tls)
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        loop="uvloop",
        http=protocol_class(settings.server, metrics, tls_context),
        ws="none",  # no WebSocket upgrades: they would leave the protocol class and its limits
        lifespan="on",
        access_log=False,  # modgate logs one line per request of its own (logs.py)
        log_config=None,
        log_level=LEVELS[settings.log.level],
        server_header=False,
        # uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 (its default
        # forwarded_allow_ips), so any local process could write the audited client
        # address; modgate reads it itself, from server.trusted_proxies only.
        proxy_headers=False,
    )
    # uvicorn would announce http:// (it does not know the protocol class does TLS).
    logging.getLogger("uvicorn.error").addFilter(_NotUvicornsBanner())
    return config


class _NotUvicornsBanner(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Uvicorn running on")


@contextmanager
def metrics_listener(listen: str, metrics: Metrics) -> Iterator[WSGIServer | None]:
    """Serve ``metrics`` on ``listen`` (``host:port``; empty: nothing) while in the block.
    A port that cannot be bound stops the start: ConfigError naming the key."""
    if not listen:
        yield None
        return
    host, port = listen_address(listen)
    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise ConfigError(f"config key metrics.listen: cannot listen on {listen}: {exc}") from exc
    log.info("modgate metrics on http://%s/metrics", listen)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def serve(settings: Settings) -> None:
    """Run modgate until interrupted. TLS unless ``tls.plain_http`` was chosen explicitly."""
    metrics = Metrics()
    config = uvicorn_config(settings, build_app(settings, metrics), metrics)
    scheme = "http" if settings.tls.plain_http else "https"
    with metrics_listener(settings.metrics.listen, metrics):
        log.info("modgate serving %s://%s:%d", scheme, settings.server.host, settings.server.port)
        uvicorn.Server(config).run()
