"""uvicorn wiring: TLS from settings, uvloop and httptools, one process."""

import logging

import uvicorn

from .app import build_app
from .observability import Metrics
from .settings import Settings


def serve(settings: Settings) -> None:
    """Run modgate until interrupted. TLS unless ``tls.plain_http`` was chosen explicitly."""
    tls = settings.tls
    metrics = Metrics()
    config = uvicorn.Config(
        build_app(settings, metrics),
        host=settings.server.host,
        port=settings.server.port,
        ssl_certfile=None if tls.plain_http else tls.cert_file,
        ssl_keyfile=None if tls.plain_http else tls.key_file,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level=logging.INFO,
        server_header=False,
    )
    uvicorn.Server(config).run()
