"""The PolicyInputs whose exact text tests/golden/policy_input.json holds, by case name.

One list, read by the Python test (``tests/unit/policy/test_input.py``) and by
``python -m tests.golden.cases`` (which prints the file when a shape change is intended).
The Rego tests (``policy_input_test.rego`` here) and docs/policy.md read the JSON file.
"""

import sys
from datetime import UTC, datetime

from gateway.goproxy.requests import ModuleRequest, SumdbRequest
from gateway.identity.base import ANONYMOUS, Identity
from gateway.policy.input import PolicyInput

AT = datetime(2026, 11, 25, 19, 0, tzinfo=UTC)
ALICE = Identity("alice", ("developers",), "token", (("token_id", "3f9a1c0e5b7d2468"),))
CI_JOB = Identity(
    "ci:github:acme/builder",
    ("ci",),
    "jwt",
    (
        ("issuer", "https://token.actions.githubusercontent.com"),
        ("issuer_name", "github"),
        ("provider", "github"),
        ("token_id", "8d7c1a52-7f0e-4d0b-9b1c-0e5f2f3c9a11"),
        ("repository", "acme/builder"),
        ("repository_id", "690121"),
        ("ref", "refs/heads/main"),
        ("ref_type", "branch"),
        ("sha", "2b1f8e5a0c9d4e3f7a6b5c4d3e2f1a0b9c8d7e6f"),
        ("workflow", "acme/builder/.github/workflows/build.yml@refs/heads/main"),
        ("run_id", "9123456789"),
        ("event", "push"),
    ),
)

CASES: dict[str, PolicyInput] = {
    "module_zip_token": PolicyInput(
        "4b1f0c2e",
        ModuleRequest("example.com/insecure", "zip", "v1.0.1"),
        ALICE,
        "127.0.0.1",
        AT,
    ),
    "anonymous_info": PolicyInput(
        "5c20d13f",
        ModuleRequest("example.com/fine", "info", "v1.0.0"),
        ANONYMOUS,
        "192.0.2.7",
        AT,
    ),
    "revision_query": PolicyInput(
        "6d31e240",
        ModuleRequest("example.com/insecure", "info", "master", version_is_query=True),
        ALICE,
        "127.0.0.1",
        AT,
    ),
    "resolved_query": PolicyInput(
        "6d31e240",
        ModuleRequest("example.com/insecure", "info", "master", version_is_query=True),
        ALICE,
        "127.0.0.1",
        datetime(2026, 11, 25, 19, 0, 0, 250_000, tzinfo=UTC),
        resolved_version="v1.0.1",
    ),
    "ci_job_mod": PolicyInput(
        "8f53a462",
        ModuleRequest("example.com/fine", "mod", "v1.0.0"),
        CI_JOB,
        "10.1.2.3",
        AT,
    ),
    "list_hidden_ask": PolicyInput(
        "9a64b573",
        ModuleRequest("example.com/insecure", "list"),
        ALICE,
        "127.0.0.1",
        AT,
        listed_versions=("v1.0.0", "v1.0.1"),
    ),
    "sumdb_lookup": PolicyInput(
        "7e42f351",
        SumdbRequest("sum.example.org", "lookup", "corp.example.com/secret", "v1.0.0"),
        ALICE,
        "2001:db8::7",
        AT,
    ),
}


def golden_text() -> str:
    """The file's text: one case a line, each exactly its ``json_text``."""
    lines = [f'"{name}": {case.json_text}' for name, case in CASES.items()]
    return '{"policy_input": {\n' + ",\n".join(lines) + "\n}}\n"


if __name__ == "__main__":
    sys.stdout.write(golden_text())
