"""The benchmark scripts still import against today's gateway: nothing else runs them in CI,
and a renamed seam (policy_input became PolicyInput) once broke one unnoticed."""

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("*.py")))
def test_a_benchmark_script_imports(script: str) -> None:
    spec = importlib.util.spec_from_file_location(f"bench_{script[:-3]}", BENCH / script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defined
    try:
        spec.loader.exec_module(module)  # the scripts run only under __main__
    finally:
        del sys.modules[spec.name]
    assert module.__doc__, f"{script} says what it measures"
