"""Which data files OPA would load where no rule reads them."""

from pathlib import Path

from gateway.policy.layout import stray_data_files


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}")


def test_data_files_inside_the_config_directory_are_not_stray(tmp_path: Path) -> None:
    _touch(
        tmp_path, "modgate/config/data.json", "modgate/config/team.yaml", "modgate/config/a/b.yml"
    )
    (tmp_path / "modgate" / "decision.rego").write_text("package modgate\n")
    assert stray_data_files(tmp_path) == []


def test_every_data_file_elsewhere_is_stray_sorted_and_relative(tmp_path: Path) -> None:
    _touch(
        tmp_path,
        "modgate/config/data.json",
        "data.json",
        "modgate/data.yaml",
        "modgate/configs/data.json",
        "x/modgate/config/data.yml",
        ".hidden.json",
        "notes.txt",
        "modgate/config.json",
    )
    assert stray_data_files(tmp_path) == [
        Path(".hidden.json"),
        Path("data.json"),
        Path("modgate/config.json"),
        Path("modgate/configs/data.json"),
        Path("modgate/data.yaml"),
        Path("x/modgate/config/data.yml"),
    ]


def test_symlinked_directories_are_followed_like_opa_does(tmp_path: Path) -> None:
    _touch(tmp_path, "elsewhere/data.json")
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert stray_data_files(policies) == [Path("linked/data.json")]
