"""The answer served to the client from an upstream's reply, and what it delivered.

Every answer ends in one ``Delivery`` (status, bytes, SHA-256 of exactly what was served,
error code) handed to ``on_end``, whatever its form:

- a buffered reply (list, info, mod, sumdb, any error answer) is sent whole; it is
  delivered as soon as the response is built, since its length and hash are known;
- a streamed zip goes out through ``StreamedDelivery`` (``http/delivery.py``), capped at
  ``max_zip_bytes`` and with the client's send deadlines; it reports what reached the
  client, and the upstream connection is closed before ``on_end`` hears of it.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response

from ..http.delivery import Delivery, StreamedDelivery
from .forwarder import UpstreamReply

OnEnd = Callable[[Delivery], None]


@dataclass(frozen=True, slots=True)
class ServingLimits:
    max_zip_bytes: int
    send_timeout_s: float
    """Longest a client may leave one chunk unread (``server.send_timeout_s``)."""
    zip_deadline_s: float
    """Longest a whole zip may take to reach the client (``upstream.zip_timeout_s``)."""


def respond(
    reply: UpstreamReply, request_id: str, on_end: OnEnd, limits: ServingLimits
) -> Response:
    """The response for ``reply``, marked with ``request_id``; ``on_end`` gets its Delivery."""
    headers = {**reply.headers, "X-Request-Id": request_id}
    if reply.body is None:
        return _streamed(reply, headers, on_end, limits)
    return _buffered(reply, headers, on_end)


def _buffered(reply: UpstreamReply, headers: dict[str, str], on_end: OnEnd) -> Response:
    body = reply.body or b""
    on_end(Delivery(reply.status, len(body), hashlib.sha256(body).hexdigest()))
    media_type = headers.pop("Content-Type", None)
    return Response(body, status_code=reply.status, headers=headers, media_type=media_type)


def _streamed(
    reply: UpstreamReply, headers: dict[str, str], on_end: OnEnd, limits: ServingLimits
) -> Response:
    headers.setdefault("Content-Type", "application/zip")
    if reply.size is not None:  # kept, so a client can tell a body cut short
        headers["Content-Length"] = str(reply.size)

    def ended(delivery: Delivery) -> None:
        reply.close()
        on_end(delivery)

    return StreamedDelivery(
        reply.chunks(),
        headers,
        max_bytes=limits.max_zip_bytes,
        on_end=ended,
        send_timeout_s=limits.send_timeout_s,
        deadline_s=limits.zip_deadline_s,
    )
