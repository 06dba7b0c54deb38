"""redact_secrets: every credential shape becomes a placeholder, other text is untouched."""

from __future__ import annotations

import re

import pytest

from gateway.redaction import SECRET_HINTS, redact_secrets

SECRETS = {
    "modgate-token": ("mgt_0123456789abcdef_" + "a" * 64, "mgt_<redacted>"),
    "modgate-token-upper": ("Mgt_0123456789abcdef_abc", "mgt_<redacted>"),
    "jwt": ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", "<redacted JWT>"),
    "github": ("ghp_" + "A1" * 10, "<redacted token>"),
    "github-fine-grained": ("github_pat_" + "x" * 20, "<redacted token>"),
    "gitlab": ("glpat-" + "y" * 20, "<redacted token>"),
}


@pytest.mark.parametrize(("secret", "placeholder"), SECRETS.values(), ids=list(SECRETS))
def test_each_secret_shape_is_replaced_wherever_it_stands(secret: str, placeholder: str) -> None:
    assert redact_secrets(f"/{secret}/@v/list") == f"/{placeholder}/@v/list"
    assert redact_secrets(f"login '{secret}' refused") == f"login '{placeholder}' refused"


@pytest.mark.parametrize(("secret", "_placeholder"), SECRETS.values(), ids=list(SECRETS))
def test_every_secret_shape_is_caught_by_the_cheap_hint(secret: str, _placeholder: str) -> None:
    # storable.py skips the substitution for text the hint does not match
    assert re.search(SECRET_HINTS, secret)


@pytest.mark.parametrize(
    "text",
    ["/github.com/google/uuid/@v/v1.6.0.zip", "v0.0.0-20240101000000-abcdef123456", "ghost_town"],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_secrets(text) == text
