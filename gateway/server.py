"""uvicorn wiring: TLS from settings, uvloop and httptools, one process."""

import logging
import ssl
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

from .app import build_app
from .http.tls import server_context
from .observability import Metrics
from .settings import Settings


def uvicorn_config(settings: Settings, app: ASGIApp, metrics: Metrics) -> uvicorn.Config:
    """The uvicorn configuration `modgate serve` runs ``app`` with."""
    tls = settings.tls
    context = None if tls.plain_http else server_context(tls)

    def tls_context(
        _config: uvicorn.Config, _default: Callable[[], ssl.SSLContext]
    ) -> ssl.SSLContext:
        if context is None:
            raise RuntimeError("no TLS context for plain http")
        return context

    return uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        ssl_certfile=None if tls.plain_http else tls.cert_file,
        ssl_keyfile=None if tls.plain_http else tls.key_file,
        ssl_context_factory=None if tls.plain_http else tls_context,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=logging.INFO,
        server_header=False,
    )


def serve(settings: Settings) -> None:
    """Run modgate until interrupted. TLS unless ``tls.plain_http`` was chosen explicitly."""
    metrics = Metrics()
    uvicorn.Server(uvicorn_config(settings, build_app(settings, metrics), metrics)).run()
