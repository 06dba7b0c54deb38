"""PolicyInput serialises itself to the documented JSON, byte for byte, once.

tests/golden/policy_input.json is the contract: the gateway must make exactly its text,
docs/policy.md must show it, and the Rego tests run the policy on it
(tests/golden/policy_input_test.rego).
"""

import dataclasses
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from gateway.goproxy.requests import ModuleRequest
from gateway.identity.base import ANONYMOUS
from gateway.policy.input import INPUT_SHAPE, PolicyInput
from gateway.policy.opa import OpaEndpoint, OpaPolicyEngine
from tests.golden.cases import CASES, golden_text

REPO = Path(__file__).resolve().parents[3]
GOLDEN = REPO / "tests" / "golden" / "policy_input.json"
_CASE_LINE = re.compile(r'^"(?P<name>[a-z_]+)": (?P<text>\{.*\}),?$')


def golden_lines() -> dict[str, str]:
    """Each case's text exactly as it stands in the golden file (one case a line)."""
    found = {}
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        match = _CASE_LINE.match(line)
        if match:
            found[match["name"]] = match["text"]
    return found


def test_the_golden_file_is_exactly_what_the_cases_make() -> None:
    assert GOLDEN.read_text(encoding="utf-8") == golden_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_case_serialises_to_its_golden_text_byte_for_byte(name: str) -> None:
    assert CASES[name].json_text == golden_lines()[name]
    assert CASES[name].encoded() == golden_lines()[name].encode("utf-8")


def test_the_golden_file_is_json_whose_cases_are_the_documents() -> None:
    loaded = json.loads(GOLDEN.read_text(encoding="utf-8"))["policy_input"]
    assert list(loaded) == list(CASES)
    for name, case in CASES.items():
        assert loaded[name] == case.document()
        # key order too: the text is the compact dump of the document as documented
        assert json.dumps(loaded[name], separators=(",", ":")) == case.json_text


def test_the_documented_example_is_the_golden_zip_case() -> None:
    doc = (REPO / "docs" / "policy.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Input (shape 1)") :]
    block = section[section.index("```json\n") + len("```json\n") : section.index("\n```\n")]
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))["policy_input"]["module_zip_token"]
    assert block == json.dumps(golden, indent=2)


def test_the_cases_cover_the_documented_request_shapes() -> None:
    documents = [case.document()["request"] for case in CASES.values()]
    assert {d["kind"] for d in documents} >= {"zip", "info", "sumdb"}
    assert any(d["version_is_query"] for d in documents)
    assert any(d["resolved"] for d in documents)
    assert any(not c.document()["identity"]["authenticated"] for c in CASES.values())


def test_a_resolved_ask_names_the_resolved_version_and_is_no_query() -> None:
    document = CASES["resolved_query"].document()["request"]
    assert (document["version"], document["version_is_query"], document["resolved"]) == (
        "v1.0.1",
        False,
        True,
    )
    assert document["major"] == "v1"
    asked = CASES["revision_query"].document()["request"]
    assert (asked["version"], asked["major"]) == ("master", None)


def test_the_text_is_made_once_and_the_value_is_frozen() -> None:
    case = CASES["anonymous_info"]
    assert case.json_text is case.json_text
    with pytest.raises(dataclasses.FrozenInstanceError):
        case.json_text = "{}"  # type: ignore[misc]
    assert case.shape == INPUT_SHAPE == json.loads(case.json_text)["shape"]


def test_non_ascii_is_escaped_so_the_text_and_its_bytes_are_the_same_characters() -> None:
    odd = PolicyInput(
        "r",
        ModuleRequest("example.com/caf\u00e9", "list"),
        ANONYMOUS,
        "127.0.0.1",
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert "\\u00e9" in odd.json_text
    assert odd.encoded().decode("ascii") == odd.json_text


async def test_opa_receives_the_input_text_inside_input_without_a_second_serialisation() -> None:
    received: list[bytes] = []

    async def decision(request: web.Request) -> web.Response:
        received.append(await request.read())
        result = {"allow": True, "reasons": [], "route": "public", "revision": "r"}
        return web.json_response({"result": result})

    app = web.Application()
    app.router.add_post("/v1/data/modgate/decision", decision)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        endpoint = OpaEndpoint.for_url(f"http://127.0.0.1:{port}")
        async with OpaPolicyEngine(endpoint, "modgate/decision", 2, 0) as engine:
            case = CASES["module_zip_token"]
            assert (await engine.decide(case)).allowed
    finally:
        await runner.cleanup()
    assert received == [b'{"input":' + golden_lines()["module_zip_token"].encode() + b"}"]
