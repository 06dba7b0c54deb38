"""The answers modgate writes itself: short ``text/plain`` bodies the go command prints.

The go command shows an error body only when it is text/plain and UTF-8, stops at the
first blank line and shows at most 8 lines (cmd/go/internal/web/api.go formatErrorDetail),
so each reason is one line and there are never more than 8. Every line passes through
``redact_secrets`` on its way out: a reason that quotes caller input (a malformed path, a
version) must never hand back a token someone pasted into it.
"""

from collections.abc import Sequence

from starlette.responses import Response

from .redaction import redact_secrets

MAX_LINES = 8
TEXT_PLAIN = "text/plain; charset=utf-8"
WWW_AUTHENTICATE = 'Basic realm="modgate", charset="UTF-8"'


def text_body(lines: Sequence[str]) -> bytes:
    """The body for ``lines``: one line each (blanks dropped), at most 8, secrets redacted."""
    flat = [redact_secrets(" ".join(line.split())) for line in lines if line.strip()][:MAX_LINES]
    return ("\n".join(flat) + "\n").encode("utf-8")


def text_response(
    status: int, lines: Sequence[str], request_id: str, *, challenge: bool = False
) -> Response:
    headers = {"X-Request-Id": request_id, "Cache-Control": "no-store"}
    if challenge:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return Response(text_body(lines), status_code=status, headers=headers, media_type=TEXT_PLAIN)


def denial_lines(reasons: Sequence[str]) -> list[str]:
    return [f"blocked by policy: {reason}" for reason in reasons]
