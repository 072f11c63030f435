"""environment.yml and pyproject.toml list the same dependencies; the top level is the design card's."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _names(reqs):
    return {re.split(r"[<>=!\[ ]", r.strip(), 1)[0].lower() for r in reqs
            if r.strip() and not r.strip().startswith("-")}


def test_environment_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    want = _names(py["dependencies"]) | _names(py["optional-dependencies"]["dev"])
    env = (ROOT / "environment.yml").read_text()
    pip = [line.strip()[2:] for line in env.split("- pip:")[1].splitlines() if line.strip().startswith("- ")]
    assert _names(pip) == want
    assert "python=3.11" in env and "-e ." in env
    for req in py["dependencies"]:
        assert req in pip, f"{req} differs between pyproject.toml and environment.yml"


def test_top_level_layout():
    for p in ("notebooks", "lib", "data", "figures", "tests", "environment.yml", "README.md", "Makefile", ".ci/run"):
        assert (ROOT / p).exists(), p
