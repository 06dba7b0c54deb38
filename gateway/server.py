"""uvicorn wiring: modgate's protocol class (limits, TLS), uvloop, one process.

uvicorn gets no certificate: TLS is started by the protocol class itself, so the connection
limit and the header deadline cover the handshake (``gateway/http/protocol.py``).
"""

import logging

import uvicorn
from starlette.types import ASGIApp

from .app import build_app
from .http.protocol import protocol_class
from .http.tls import server_context
from .observability import Metrics
from .settings import Settings

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
        access_log=False,
        log_level=logging.INFO,
        server_header=False,
    )
    # uvicorn would announce http:// (it does not know the protocol class does TLS).
    logging.getLogger("uvicorn.error").addFilter(_NotUvicornsBanner())
    return config


class _NotUvicornsBanner(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Uvicorn running on")


def serve(settings: Settings) -> None:
    """Run modgate until interrupted. TLS unless ``tls.plain_http`` was chosen explicitly."""
    metrics = Metrics()
    config = uvicorn_config(settings, build_app(settings, metrics), metrics)
    scheme = "http" if settings.tls.plain_http else "https"
    log.info("modgate serving %s://%s:%d", scheme, settings.server.host, settings.server.port)
    uvicorn.Server(config).run()
