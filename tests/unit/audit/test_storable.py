"""storable: every text of an audit item escaped, redacted and cut before it is queued."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from gateway.audit.records import Completion, DecisionRecord
from gateway.audit.storable import safe_text, storable


def record(path: str, reasons: tuple[str, ...] = ()) -> DecisionRecord:
    return DecisionRecord(
        "r" * 32, datetime.now(UTC), None, (), "anonymous", "127.0.0.1", "invalid", path,
        None, None, None, "deny", reasons, "malformed_path", None, None, None, 400,
    )  # fmt: skip


NOT_UTF8 = b"\xff".decode("utf-8", "surrogateescape")
ESCAPES = {
    "nul": ("/x\x00", "/x\\x00"),
    "newline": ("/x\n", "/x\\x0a"),
    "del": ("/x\x7f", "/x\\x7f"),
    "c1": ("/x\x85", "/x\\u0085"),
    "not-utf8-byte": (f"/x{NOT_UTF8}", "/x\\xff"),
    "lone-surrogate": ("/x\ud800", "/x\\ud800"),
    "backslash": ("/x\\y", "/x\\\\y"),
    "plain": ("/example.com/hello/@v/list", "/example.com/hello/@v/list"),
    "non-ascii-kept": ("/é", "/é"),
}


@pytest.mark.parametrize(("given", "stored"), ESCAPES.values(), ids=list(ESCAPES))
def test_texts_are_escaped_unambiguously(given: str, stored: str) -> None:
    assert safe_text(given, 2048) == stored
    stored.encode("utf-8")  # always valid UTF-8: the store takes it


def test_ascii_only_escapes_every_non_ascii_character() -> None:
    assert safe_text("/é漢", None, ascii_only=True) == "/\\u00e9\\u6f22"


def test_texts_are_cut_to_their_column() -> None:
    stored = storable(record("/" + "a" * 5000))
    assert len(stored.path) == 2048 and stored.path.endswith("…")


def test_every_field_is_made_safe_including_lists() -> None:
    stored = storable(record("/mgt_abc\x00", reasons=("x\x01", "token mgt_1_2")))
    assert stored.path == "/mgt_<redacted>\\x00"
    assert stored.reasons == ("x\\x01", "token mgt_<redacted>")


def test_an_item_that_is_already_safe_is_returned_as_it_is() -> None:
    given = record("/example.com/hello/@v/list")
    assert storable(given) is given
    completion = Completion("r" * 32, 200, 1, "0" * 64, 1.0, datetime.now(UTC))
    assert storable(completion) is completion


def test_the_policy_input_is_kept_exactly_as_sent() -> None:
    # given an input document whose texts would be escaped or redacted anywhere else
    sent = '{"shape":1,"identity":{"subject":"zoë mgt_1_2"},"request":{"module":"m\\u0001"}}'
    given = dataclasses.replace(record("/x\x00"), policy_input=sent, input_shape=1)
    # then the path is made safe, the input is not: a replay must see what OPA saw
    stored = storable(given)
    assert stored.path == "/x\\x00" and stored.policy_input == sent


def test_the_ascii_only_policy_input_is_the_same_document_in_ascii() -> None:
    sent = json.dumps({"shape": 1, "identity": {"subject": "zoë"}}, ensure_ascii=False)
    stored = storable(dataclasses.replace(record("/x"), policy_input=sent), ascii_only=True)
    assert stored.policy_input is not None and stored.policy_input.isascii()
    assert json.loads(stored.policy_input) == json.loads(sent)
