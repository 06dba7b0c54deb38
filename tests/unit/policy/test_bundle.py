"""The policies directory as an OPA bundle, and its content-hash revision."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.policy.bundle import read_bundle
from gateway.resources import policies_dir
from tests.support.opa import find_opa


def _policies(root: Path) -> Path:
    (root / "modgate" / "config").mkdir(parents=True)
    (root / "modgate" / "decision.rego").write_text("package modgate\n\nallow := true\n")
    (root / "modgate" / "decision_test.rego").write_text("package modgate\n")
    (root / "modgate" / "config" / "data.json").write_text('{"blacklist": []}')
    (root / "modgate" / ".decision.rego.swp").write_text("junk")
    (root / "README.md").write_text("notes")
    return root


def test_the_revision_hashes_exactly_the_files_opa_serves(tmp_path: Path) -> None:
    bundle = read_bundle(_policies(tmp_path))
    assert [name for name, _ in bundle.files] == [
        "modgate/config/data.json",
        "modgate/decision.rego",
    ]
    assert bundle.revision.startswith("sha256:") and len(bundle.revision) == 7 + 64


def test_timestamps_and_files_opa_does_not_serve_leave_the_revision_alone(
    tmp_path: Path,
) -> None:
    root = _policies(tmp_path)
    before = read_bundle(root)
    os.utime(root / "modgate" / "decision.rego", (1, 1))
    (root / "modgate" / "decision_test.rego").write_text("package modgate\n\n# more tests\n")
    (root / "README.md").write_text("other notes")
    after = read_bundle(root)
    assert after.revision == before.revision
    assert after.tarball() == before.tarball()


@pytest.mark.parametrize(
    "edit",
    [
        lambda root: (root / "modgate" / "config" / "data.json").write_text('{"blacklist":[]}'),
        lambda root: (root / "modgate" / "decision.rego").rename(root / "modgate" / "rules.rego"),
        lambda root: (root / "modgate" / "extra.rego").write_text("package modgate\n"),
    ],
    ids=["one byte of data", "a file renamed", "a file added"],
)
def test_any_served_change_gives_a_new_revision(tmp_path: Path, edit: object) -> None:
    root = _policies(tmp_path)
    before = read_bundle(root).revision
    edit(root)  # type: ignore[operator]
    assert read_bundle(root).revision != before


def test_real_opa_reads_the_revision_and_the_policy_from_the_tarball(tmp_path: Path) -> None:
    bundle = read_bundle(policies_dir(""))
    tarball = tmp_path / "bundle.tar.gz"
    tarball.write_bytes(bundle.tarball())
    done = subprocess.run(
        [str(find_opa()), "eval", "--format", "json", "--bundle", str(tarball),
         "data.system.bundles[_].manifest"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    manifest = json.loads(done.stdout)["result"][0]["expressions"][0]["value"]
    assert manifest == {"revision": bundle.revision, "roots": ["modgate"]}
    assert [name for name, _ in bundle.files if name.endswith("_test.rego")] == []


def test_a_directory_without_rego_or_unreadable_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no Rego policy"):
        read_bundle(tmp_path)
    with pytest.raises(ConfigError, match="cannot read"):
        read_bundle(tmp_path / "missing")


def test_a_data_file_a_bundle_would_not_read_has_no_tarball(tmp_path: Path) -> None:
    root = _policies(tmp_path)
    (root / "modgate" / "config" / "team.yaml").write_text("a: 1\n")
    bundle = read_bundle(root)
    assert "modgate/config/team.yaml" in [name for name, _ in bundle.files]
    with pytest.raises(ConfigError, match=r"modgate/config/team\.yaml"):
        bundle.tarball()
