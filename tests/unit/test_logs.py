"""gateway/logs.py: the per-request line, text and JSON formats, the bound request id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from gateway import logs
from gateway.settings import LOG_LEVELS

LINE = {
    "request_id": "3f2a",
    "subject": "alice",
    "kind": "zip",
    "module": "example.com/hello",
    "version": "v1.0.0",
    "decision": "allow",
    "status": 200,
    "error_code": None,
    "upstream": "https://athens.corp.example",
    "bytes_sent": 420,
    "duration_s": 0.0123456,
}


def in_format(log_format: str) -> io.StringIO:
    stream = io.StringIO()
    logger = logging.getLogger("gateway")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.addHandler(logs.handler(log_format, stream))
    return stream


@pytest.fixture
def gateway_logger() -> Iterator[None]:
    logger = logging.getLogger("gateway")
    old = (logger.level, logger.propagate, list(logger.handlers))
    logger.setLevel(logging.INFO)
    logger.propagate = False  # pytest's capture stays out of it
    yield
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    for handler in old[2]:
        logger.addHandler(handler)
    logger.setLevel(old[0])
    logger.propagate = old[1]


def test_the_request_line_in_json_holds_every_field(gateway_logger: None) -> None:
    stream = in_format("json")
    logs.request_line(**LINE)
    (line,) = stream.getvalue().splitlines()
    document = json.loads(line)
    assert document["level"] == "info"
    assert document["logger"] == "gateway.requests"
    assert document["message"] == "request"
    assert document["time"].endswith("Z")
    expected = {k: v for k, v in LINE.items() if k not in ("bytes_sent", "duration_s")}
    assert {k: document[k] for k in expected} == expected
    assert (document["bytes"], document["duration_ms"]) == (420, 12.346)


def test_the_request_line_in_text_is_one_line_of_key_values(gateway_logger: None) -> None:
    stream = in_format("text")
    odd = {**LINE, "subject": 'a "b"\nc', "module": None}
    logs.request_line(**odd)
    (line,) = stream.getvalue().splitlines()
    assert " INFO gateway.requests: request request_id=3f2a " in line
    assert 'subject="a \\"b\\"\\nc" kind=zip module=- version=v1.0.0 decision=allow' in line
    assert "status=200 error_code=- upstream=https://athens.corp.example bytes=420" in line


def test_every_line_logged_while_a_request_is_served_carries_its_id(
    gateway_logger: None,
) -> None:
    stream = in_format("json")
    log = logging.getLogger("gateway.app")

    async def request(request_id: str, started: asyncio.Event) -> None:
        logs.bind_request_id(request_id)
        started.set()
        await asyncio.sleep(0)
        log.error("request failed unexpectedly")
        await asyncio.create_task(audit_failure())  # a task it starts inherits the id

    async def audit_failure() -> None:
        logging.getLogger("gateway.audit.writer").error("audit completion lost")

    async def main() -> None:
        one, two = asyncio.Event(), asyncio.Event()
        await asyncio.gather(request("one", one), request("two", two))
        log.warning("outside any request")

    asyncio.run(main())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    by_id = sorted((line.get("request_id", "-"), line["message"]) for line in lines)
    assert by_id == [
        ("-", "outside any request"),
        ("one", "audit completion lost"),
        ("one", "request failed unexpectedly"),
        ("two", "audit completion lost"),
        ("two", "request failed unexpectedly"),
    ]


def test_a_traceback_stays_inside_its_json_line(gateway_logger: None) -> None:
    stream = in_format("json")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("gateway.app").exception("request %s failed unexpectedly", "r1")
    (line,) = stream.getvalue().splitlines()
    document = json.loads(line)
    assert document["message"] == "request r1 failed unexpectedly"
    assert "RuntimeError: boom" in document["exception"]


def test_configure_quiets_alembic_below_warning() -> None:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    alembic = logging.getLogger("alembic")
    saved_alembic = alembic.level
    try:
        logs.configure("json", "info")
        assert alembic.getEffectiveLevel() == logging.WARNING
        assert root.level == logging.INFO
        (handler,) = root.handlers
        assert isinstance(handler.formatter, logs.JsonFormatter)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        alembic.setLevel(saved_alembic)


def test_every_level_the_settings_accept_is_a_logging_level() -> None:
    assert tuple(logs.LEVELS) == LOG_LEVELS
