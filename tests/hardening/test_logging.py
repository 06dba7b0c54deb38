"""What modgate writes to its log: one line per request, JSON when asked, the request id
on every line of a request, and no library chatter from the CLI's chores."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Tokens
from tests.hardening.conftest import ServeOwn
from tests.hardening.test_operations import bearer
from tests.support.cli import run_modgate
from tests.support.gateway import GatewayProcess
from tests.support.locks import table_locks
from tests.support.postgres import ThrowawayPostgres

HELLO_ZIP = "/example.com/hello/@v/v1.0.0.zip"


def test_cli_chores_print_no_library_chatter(tmp_path: Path) -> None:
    env = {"MODGATE_AUDIT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/audit.db"}
    migrated = run_modgate("audit", "migrate", env=env)
    created = run_modgate("token", "create", "--subject", "carol", "--group", "dev", env=env)
    listed = run_modgate("token", "list", env=env)
    assert (migrated.returncode, created.returncode, listed.returncode) == (0, 0, 0)
    # migrating says nothing at all (Alembic announced its context and each step)
    assert (migrated.stdout, migrated.stderr) == ("", "")
    # token create prints the token, and one line about it
    assert created.stdout.startswith("mgt_") and len(created.stdout.splitlines()) == 1
    (note,) = created.stderr.splitlines()
    assert note.startswith("token ") and note.endswith("shown once, store it now")
    assert listed.stderr == "" and "\tcarol\tdev\tactive\t" in listed.stdout


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return lines


def wait_for_line(path: Path, wanted: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while wanted not in path.read_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {wanted!r} in the log:\n{path.read_text()[-3000:]}")
        time.sleep(0.1)


@pytest.mark.postgres
@pytest.mark.opa
def test_json_logs_a_line_per_request_and_its_id_on_every_line_of_it(
    serve_own: ServeOwn, tls_context: ssl.SSLContext, tokens: Tokens, postgres: ThrowawayPostgres
) -> None:
    with serve_own(MODGATE_LOG_FORMAT="json", MODGATE_AUDIT_TIMEOUT_S="1") as process:
        with httpx.Client(base_url=process.url, verify=tls_context, timeout=20) as client:
            # given one request served, and one while the audit store cannot take records
            served = client.get(HELLO_ZIP, headers=bearer(tokens.alice))
            with table_locks(postgres.libpq_dsn(), "audit_records"):
                refused = client.get(HELLO_ZIP, headers=bearer(tokens.alice))
                # (its completion is lost too, a second or two later)
                lost = f"audit completion for {refused.headers['X-Request-Id']} lost"
                wait_for_line(process.log_path, lost)
        served_id, refused_id = served.headers["X-Request-Id"], refused.headers["X-Request-Id"]
        assert (served.status_code, refused.status_code) == (200, 503)
        wait_for_line(process.log_path, served_id)
    # then every line of the log is a JSON object, the server's own lines included (read
    # once modgate has stopped: a line being written is not yet a whole line)
    lines = log_lines(process.log_path)
    assert any(line["logger"] == "uvicorn.error" for line in lines)
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    requests = {line["request_id"]: line for line in lines if line["logger"] == "gateway.requests"}
    # and each request has its one line, with what an operator looks for
    assert requests[served_id] | {"time": "", "duration_ms": 0} == {
        "time": "",
        "level": "info",
        "logger": "gateway.requests",
        "message": "request",
        "request_id": served_id,
        "subject": "alice",
        "kind": "zip",
        "module": "example.com/hello",
        "version": "v1.0.0",
        "decision": "allow",
        "status": 200,
        "error_code": None,
        "upstream": requests[served_id]["upstream"],
        "bytes": int(served.headers["Content-Length"]),
        "duration_ms": 0,
    }
    assert requests[served_id]["upstream"].startswith("http://127.0.0.1:")
    assert requests[served_id]["duration_ms"] > 0
    refusal = requests[refused_id]
    assert (refusal["status"], refusal["error_code"]) == (503, "audit_unavailable")
    # and the lines logged while the refused request was served carry its id
    of_refused = [line for line in lines if line.get("request_id") == refused_id]
    loggers = sorted({(line["logger"], line["level"]) for line in of_refused})
    assert loggers == [
        ("gateway.app", "error"),  # its refusal could not be recorded
        ("gateway.audit.writer", "error"),  # nor its completion
        ("gateway.requests", "info"),
    ]


def test_text_logs_are_the_default_with_one_line_per_request(
    gateway: GatewayProcess, client: httpx.Client, tokens: Tokens
) -> None:
    response = client.get("/example.com/hello/@v/list", headers=bearer(tokens.alice))
    request_id = response.headers["X-Request-Id"]
    wait_for_line(gateway.log_path, request_id)
    (line,) = [line for line in gateway.log_path.read_text().splitlines() if request_id in line]
    assert f" INFO gateway.requests: request request_id={request_id} subject=alice kind=list " in (
        line
    )
    assert " module=example.com/hello version=- decision=allow status=200 error_code=- " in line
