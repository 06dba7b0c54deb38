"""Never show or store a credential: anything shaped like a secret becomes a placeholder.

Applied wherever text that a caller controls may be shown (a refusal body, a log line) or
stored (the audit record): a token pasted into the Basic user name, a path segment, a JWT
in the wrong header. The shapes are modgate's own API tokens, JSON Web Tokens, and the
well-known prefixes of source-hosting tokens that developers keep in the same ``.netrc``.

    >>> redact_secrets("Basic login 'mgt_0123456789abcdef_...' is wrong")
    "Basic login 'mgt_<redacted>' is wrong"
"""

import re

_SECRET_SHAPES = re.compile(
    r"""
      \b(?i:mgt_)[A-Za-z0-9_]+     # modgate API tokens (any part; any case: a path's "!m")
    | \beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?   # JWT / JWS compact
    | \b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{16,}            # GitHub tokens
    | \bgithub_pat_[A-Za-z0-9_]{16,}
    | \bglpat-[A-Za-z0-9_-]{16,}                            # GitLab personal tokens
    """,
    re.VERBOSE,
)


SECRET_HINTS = r"(?i:mgt_)|eyJ|gh[oprsu]_|github_pat_|glpat-"
"""What every shape above starts with: text without a match holds no secret (a cheap test
before the full substitution; tests/unit/test_redaction.py keeps the two in step)."""


def _placeholder(match: re.Match[str]) -> str:
    text = match.group(0)
    if text[:4].lower() == "mgt_":
        return "mgt_<redacted>"
    if text.startswith("eyJ"):
        return "<redacted JWT>"
    return "<redacted token>"


def redact_secrets(text: str) -> str:
    """``text`` with every secret-shaped substring replaced by a placeholder."""
    return _SECRET_SHAPES.sub(_placeholder, text)
