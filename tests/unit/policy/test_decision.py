"""Reading OPA's reply: exactly the documented decision, or a refusal saying which side failed.

An undefined decision (the policy is not loaded) and a malformed one (the policy is broken)
raise different errors with different codes, both 503: the audit record tells them apart.
"""

import pytest

from gateway.errors import (
    PolicyError,
    PolicyMalformedError,
    PolicyUndefinedError,
    PolicyUnreachableError,
)
from gateway.policy.decision import (
    MAX_REASON_CHARS,
    MAX_REASONS,
    Decision,
    Reason,
    decision_from_reply,
)


def why(message: str, code: str = "blacklisted") -> dict[str, object]:
    return {"code": code, "message": message, "rule": "modgate.test"}


def reply(**result: object) -> dict[str, object]:
    return {"result": {"allow": True, "reasons": [], "route": "public", **result}}


def test_an_allow_is_read_with_its_route_and_revision() -> None:
    assert decision_from_reply(reply(route="private", revision="2026-11-25.1")) == Decision(
        allowed=True, reasons=(), route="private", revision="2026-11-25.1"
    )


def test_a_missing_revision_reads_as_unknown() -> None:
    assert decision_from_reply(reply()).revision == "unknown"


def test_a_denial_keeps_its_reasons_in_order() -> None:
    decision = decision_from_reply(reply(allow=False, reasons=[why("b first"), why("a second")]))
    assert (decision.allowed, decision.messages) == (False, ("b first", "a second"))
    assert decision.reasons[0] == Reason("blacklisted", "b first", "modgate.test")


def test_a_denial_without_reasons_still_says_it_was_denied() -> None:
    decision = decision_from_reply(reply(allow=False, reasons=[]))
    assert decision.messages == ("denied by policy (no reason given)",)


def test_reasons_are_one_line_each_and_bounded() -> None:
    many = [why(f"line {n}\n\nsecond paragraph\tend") for n in range(MAX_REASONS + 3)]
    decision = decision_from_reply(reply(allow=False, reasons=[*many, why("x" * 1000)]))
    assert len(decision.reasons) == MAX_REASONS
    assert decision.messages[0] == "line 0 second paragraph end"
    long = decision_from_reply(reply(allow=False, reasons=[why("x" * 1000)])).messages[0]
    assert len(long) == MAX_REASON_CHARS


def test_a_long_revision_is_cut() -> None:
    assert len(decision_from_reply(reply(revision="r" * 500)).revision) == 128


def test_no_result_is_undefined_not_malformed() -> None:
    with pytest.raises(PolicyUndefinedError) as refused:
        decision_from_reply({})
    assert refused.value.code == "policy_undefined"
    assert refused.value.status == 503
    assert "undefined" in refused.value.reason


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ([], "something other than a JSON object"),
        ("allow", "something other than a JSON object"),
        ({"result": True}, "not an object"),
        ({"result": ["allow"]}, "not an object"),
        (reply(allow="true"), "no boolean 'allow'"),
        (reply(allow=1), "no boolean 'allow'"),
        ({"result": {"reasons": [], "route": "public"}}, "no boolean 'allow'"),
        (reply(reasons="none"), "no list 'reasons'"),
        (reply(allow=False, reasons=["plain string"]), "reason that is not an object"),
        (reply(reasons=[why("ok"), 5]), "reason that is not an object"),
        (reply(reasons=[why("ok", code="Bad-Code")]), "bad 'code'"),
        (reply(reasons=[{"code": "x", "rule": "r"}]), "without a string 'message'"),
        (reply(reasons=[{**why("ok"), "extra": 1}]), "unknown keys"),
        (reply(reasons=[{**why("ok"), "log_only": "yes"}]), "bad 'rule' or 'log_only'"),
        (reply(extra=True), "unknown keys"),
        (reply(obligations=[]), "not an object"),
        (reply(obligations={"cache": 1}), "unknown obligation"),
        (reply(obligations={"cache_ttl_s": "60"}), "bad obligation cache_ttl_s"),
        (reply(obligations={"cache_ttl_s": -1}), "bad obligation cache_ttl_s"),
        (reply(obligations={"cache_ttl_s": True}), "bad obligation cache_ttl_s"),
        (reply(obligations={"log_only": 1}), "bad obligation log_only"),
        (reply(route="elsewhere"), "bad 'route'"),
        (reply(route=None), "bad 'route'"),
        (reply(revision=7), "non-string 'revision'"),
    ],
)
def test_anything_but_the_documented_shape_is_malformed(answer: object, reason: str) -> None:
    with pytest.raises(PolicyMalformedError) as refused:
        decision_from_reply(answer)
    assert refused.value.code == "policy_malformed"
    assert reason in refused.value.reason


def test_the_three_policy_failures_have_distinct_codes_and_one_base() -> None:
    kinds = (PolicyUnreachableError, PolicyUndefinedError, PolicyMalformedError)
    assert len({kind.code for kind in kinds}) == 3
    assert all(issubclass(kind, PolicyError) and kind.status == 503 for kind in kinds)


def test_obligations_are_read() -> None:
    decision = decision_from_reply(reply(obligations={"log_only": True, "cache_ttl_s": 0}))
    assert (decision.log_only, decision.cache_ttl_s) == (True, 0)
    assert decision_from_reply(reply()).cache_ttl_s is None
