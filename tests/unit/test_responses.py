"""modgate's own text/plain bodies: one line a reason, at most 8, no secret shown back."""

from gateway.responses import text_body

TOKEN = "mgt_0123456789abcdef_" + "a" * 64


def test_each_reason_is_one_line_and_there_are_at_most_eight() -> None:
    body = text_body(["a\nb", "", *[f"r{n}" for n in range(10)]])
    assert body == b"a b\nr0\nr1\nr2\nr3\nr4\nr5\nr6\n"


def test_secret_shaped_text_in_a_reason_is_redacted() -> None:
    body = text_body([f"malformed module path '{TOKEN}/x': missing dot in first path element"])
    assert body == b"malformed module path 'mgt_<redacted>/x': missing dot in first path element\n"
    assert b"a" * 64 not in body
