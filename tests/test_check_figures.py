"""`make check-figures` (scripts.check_figures over lib.publish.drift, tolerances in lib.notebook.tolerances): the
committed numbers pass unchanged; a flipped verdict, a changed count or provenance, a float moved beyond its
interval or tolerance, a key gone or new and a missing numbers.json fail naming the notebook and key; a float moved
within its tolerance passes; a numbers.json that is not committed is only noted.

Every case runs on a temporary git repository holding copies of the committed numbers.json files (from
``git show HEAD:...`` of this repository); no tracked file is touched.
"""
import copy
import json
import shutil
import subprocess
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from lib.core.checks import run_cli
from lib.core.paths import FIGURES, ROOT
from lib.notebook import tolerances
from lib.notebook.tolerances import TOLERANCES, allowance, last_digit, rule_for
from lib.publish.drift import compare_numbers, figure_drift
from scripts import check_figures

GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None or not (ROOT / ".git").exists(), reason="needs git and a git checkout")


def git(*args, cwd=ROOT) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false",
                           *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def committed_paths() -> list[str]:
    return [p for p in git("ls-tree", "-r", "--name-only", "HEAD", "--", "figures").split()
            if p.endswith("/numbers.json")]


@pytest.fixture(scope="module")
def committed():
    """{path in the repository: content} of every committed numbers.json at HEAD."""
    return {p: json.loads(git("show", f"HEAD:{p}")) for p in committed_paths()}


@pytest.fixture
def repo(tmp_path, committed):
    """A temporary git repository whose figures/ holds the committed numbers.json files, committed; returns its
    figures folder."""
    top = tmp_path / "repo"
    for path, content in committed.items():
        (top / path).parent.mkdir(parents=True, exist_ok=True)
        (top / path).write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")
    git("init", "-q", cwd=top)
    git("add", "figures", cwd=top)
    git("commit", "-q", "-m", "committed numbers", cwd=top)
    return top / "figures"


def doctor(figures: Path, run: str, change) -> None:
    """Apply ``change(content)`` to <figures>/<run>/numbers.json on disk (the working tree of the tmp repo)."""
    p = figures / run / "numbers.json"
    d = json.loads(p.read_text())
    change(d)
    p.write_text(json.dumps(d, indent=1, sort_keys=True) + "\n")


def cli(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        run_cli(check_figures.main, [str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def setter(key, value, block="numbers"):
    def change(d):
        d[block][key] = value
    return change


# ------------------------------------------------------------------------------------------- the committed files
def test_committed_numbers_pass_unchanged(repo, committed, capsys):
    report = figure_drift(repo, "HEAD")
    assert report.ok, report.text()
    want = sorted(p[len("figures/"):-len("/numbers.json")] for p in committed)
    assert report.compared == want and any(r.startswith("cifar10/") for r in want)
    assert not report.notes
    code, out, err = cli(["--figures", repo], capsys)
    assert code == 0 and "all as committed" in out and not err, (out, err)


def test_working_tree_figures_against_head(capsys):
    """The repository's own figures/ against HEAD, when its numbers.json files are as committed."""
    if git("status", "--porcelain", "--", *committed_paths()).strip():
        pytest.skip("a numbers.json of the working tree differs from HEAD (being regenerated)")
    report = figure_drift(FIGURES, "HEAD")
    assert report.ok, report.text()
    assert len(report.compared) == len(committed_paths())


# ------------------------------------------------------------------------------------------------ what fails
FAILS = [
    ("a verdict flipped", "02_channel_selectivity", "claim_purity", "holds"),
    ("a bool claim flipped", "03_self_guided_reconstruction", "claim_structure_kept", False),
    ("a count changed", "02_channel_selectivity", "trained_specialized", 146),
    ("an int became a float", "03_self_guided_reconstruction", "fast_nfe", 400.0),
    # moves computed from the committed numbers (n), just past each rule's allowance
    ("beyond the 95% interval", "06_linear_probe", "phi_probe_acc",
     lambda n: n["phi_probe_acc"] + (n["phi_probe_ci_high"] - n["phi_probe_ci_low"]) / 2 + 0.005),
    ("beyond 2 sd", "06_linear_probe", "phi_knn_acc", lambda n: n["phi_knn_acc"] + 2 * n["phi_knn_acc_sd"] + 0.003),
    ("beyond the default", "04_distances", "spearman_trained",
     lambda n: n["spearman_trained"] + 0.005 + 0.03 * abs(n["spearman_trained"]) + 0.003),
    ("beyond a KID interval", "03_self_guided_reconstruction", "kid_pixels_guided", 0.02),
    ("an exact float parameter", "01_denoising_sparsity", "sigma", 0.1),
    ("a null", "07_explorer", "same_class_rate_phi", None),
    ("on the CIFAR-10 run", "cifar10/06_linear_probe", "phi_probe_acc", 0.45),
]


@pytest.mark.parametrize("what, run, key, value", FAILS, ids=[f[0] for f in FAILS])
def test_a_moved_value_fails_naming_it(repo, capsys, what, run, key, value):
    numbers = json.loads((repo / run / "numbers.json").read_text())["numbers"]
    old = numbers[key]
    if callable(value):
        value = round(value(numbers), 6)
    doctor(repo, run, setter(key, value))
    report = figure_drift(repo)
    assert not report.ok
    (f,) = report.findings
    assert (f.run, f.key, f.old, f.new) == (run, key, old, value)
    if isinstance(value, float) and isinstance(old, float) and key != "sigma":
        assert "tolerance" in f.why
    code, out, err = cli(["--figures", repo], capsys)
    assert code == 1 and not err
    line = next(ln for ln in out.splitlines() if ln.startswith("MOVED"))
    assert f"{run}: {key}: {json.dumps(old)} -> {json.dumps(value)}" in line, line
    assert out.splitlines()[-1].endswith("(tolerances: lib/notebook/tolerances.py)") and run in out.splitlines()[-1]


def test_the_tolerance_is_printed(repo):
    n = json.loads((repo / "06_linear_probe" / "numbers.json").read_text())["numbers"]
    doctor(repo, "06_linear_probe", setter("phi_probe_acc", 0.17))
    (f,) = figure_drift(repo).findings
    half = (n["phi_probe_ci_high"] - n["phi_probe_ci_low"]) / 2
    assert f"moved {abs(0.17 - n['phi_probe_acc']):.3g}, tolerance {half:.3g} (half the 95% interval " \
           "phi_probe_ci_low..phi_probe_ci_high" in str(f), f


def test_provenance_is_exact(repo):
    def change(d):
        d["run"]["checkpoint_sha256"] = "0123456789ab"
        d["run"]["n_images"] = 999
    doctor(repo, "05_clustering", change)
    findings = figure_drift(repo).findings
    assert [(f.run, f.key) for f in findings] == [("05_clustering", "run.checkpoint_sha256"),
                                                  ("05_clustering", "run.n_images")]


def test_nested_values_use_their_keys_rule(repo):
    def change(d):
        d["numbers"]["psnr_by_sigma"]["0.1"]["output"] = 26.77 + 0.5
        d["numbers"]["blocks_sparser"] = ["D3"]
    doctor(repo, "01_denoising_sparsity", change)
    doctor(repo, "05_clustering", lambda d: d["numbers"]["k_grid"][1].update(phi="whitened"))
    keys = [(f.run, f.key) for f in figure_drift(repo).findings]
    assert keys == [("01_denoising_sparsity", "blocks_sparser"),
                    ("01_denoising_sparsity", "psnr_by_sigma[0.1][output]"),
                    ("05_clustering", "k_grid[1][phi]")]


def test_keys_that_disappear_or_appear(repo):
    def change(d):
        del d["numbers"]["chance"]
        d["numbers"]["chance_v2"] = 0.07
    doctor(repo, "07_explorer", change)
    findings = {f.key: f for f in figure_drift(repo).findings}
    assert set(findings) == {"chance", "chance_v2"}
    assert "disappeared" in findings["chance"].why and "appeared" in findings["chance_v2"].why
    assert "07_explorer: chance: 0.07143 -> (absent): disappeared" == str(findings["chance"])


# ------------------------------------------------------------------------------------------------ what passes
PASSES = [
    # moves computed from the committed numbers (n), just inside each rule's allowance
    ("within the 95% interval", "06_linear_probe", "phi_probe_acc",
     lambda n: n["phi_probe_acc"] + 0.9 * (n["phi_probe_ci_high"] - n["phi_probe_ci_low"]) / 2),
    ("within 2 sd", "06_linear_probe", "phi_knn_acc", lambda n: n["phi_knn_acc"] - 1.5 * n["phi_knn_acc_sd"]),
    ("within the default", "04_distances", "spearman_trained",
     lambda n: n["spearman_trained"] - 0.8 * (0.005 + 0.03 * abs(n["spearman_trained"]))),
    ("within a KID interval", "03_self_guided_reconstruction", "kid_pixels_guided", 0.01),
    ("the last stored digit", "06_linear_probe", "phi_dims", 256.1),                     # phi_dims_sd is 0
    ("a CI bound with its estimate", "03_self_guided_reconstruction", "guided_kept_factor_ci_low", 0.62),
]


@pytest.mark.parametrize("what, run, key, value", PASSES, ids=[p[0] for p in PASSES])
def test_a_value_moved_within_its_tolerance_passes(repo, capsys, what, run, key, value):
    if callable(value):
        value = round(value(json.loads((repo / run / "numbers.json").read_text())["numbers"]), 6)
    doctor(repo, run, setter(key, value))
    report = figure_drift(repo)
    assert report.ok, report.text()
    code, out, _ = cli(["--figures", repo], capsys)
    assert code == 0 and "all as committed" in out


# -------------------------------------------------------------------------------------------------- the files
def test_a_missing_numbers_json_is_an_error(repo, capsys):
    (repo / "07_explorer" / "numbers.json").unlink()
    report = figure_drift(repo)
    (f,) = report.findings
    assert (f.run, f.key) == ("07_explorer", "numbers.json") and "missing" in f.why
    assert "07_explorer" not in report.compared
    code, out, _ = cli(["--figures", repo], capsys)
    assert code == 1 and "MOVED 07_explorer: numbers.json: missing: committed as figures/07_explorer/numbers.json" \
        in out, out


def test_an_untracked_numbers_json_is_reported_not_an_error(repo, capsys):
    (repo / "08_new").mkdir()
    (repo / "08_new" / "numbers.json").write_text('{"numbers": {"a": 1}, "run": {}}\n')
    report = figure_drift(repo)
    assert report.ok and report.notes == ["08_new/numbers.json is not in HEAD: not compared (commit it to check it)"]
    code, out, _ = cli(["--figures", repo], capsys)
    assert code == 0 and out.startswith("note: 08_new/numbers.json is not in HEAD")


def test_a_corrupt_numbers_json_is_an_error(repo):
    (repo / "04_distances" / "numbers.json").write_text('{"numbers": {"a": ')
    (repo / "05_clustering" / "numbers.json").write_text('[1, 2]\n')
    findings = {f.run: f for f in figure_drift(repo).findings}
    assert set(findings) == {"04_distances", "05_clustering"}
    assert "unreadable" in findings["04_distances"].why and "not valid JSON" in findings["04_distances"].why
    assert "is not a numbers.json object" in findings["05_clustering"].why


def test_against_another_commit(repo, capsys):
    """--against REV: the working tree is compared with that commit, not HEAD."""
    doctor(repo, "02_channel_selectivity", setter("claim_purity", "holds"))
    git("commit", "-q", "-a", "-m", "regenerated", cwd=repo)
    assert figure_drift(repo, "HEAD").ok
    report = figure_drift(repo, "HEAD~1")
    assert [(f.run, f.key) for f in report.findings] == [("02_channel_selectivity", "claim_purity")]
    code, out, _ = cli(["--figures", repo, "--against", "HEAD~1"], capsys)
    assert code == 1 and "against HEAD~1" in out.splitlines()[-1]
    code, _, err = cli(["--figures", repo, "--against", "HEAD~5"], capsys)
    assert code == 2 and err.startswith("error: argument --against: 'HEAD~5' is not a commit of")


def test_figures_outside_a_repository(tmp_path, capsys):
    (tmp_path / "01_x").mkdir()
    (tmp_path / "01_x" / "numbers.json").write_text('{"numbers": {"a": 1}, "run": {}}')
    code, _, err = cli(["--figures", tmp_path], capsys)
    assert code == 2 and err.startswith("error: argument --figures: ") and "not inside a git work tree" in err


def test_the_committed_files_are_untouched(repo, committed):
    """The check reads only: after a failing check the tmp repository's files are as they were."""
    doctor(repo, "02_channel_selectivity", setter("claim_purity", "holds"))
    before = {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    figure_drift(repo)
    assert {p: p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before
    assert git("status", "--porcelain", cwd=repo).split() == ["M", "figures/02_channel_selectivity/numbers.json"]


# -------------------------------------------------------------------------------------------------- the table
FIELDS = {"exact", "ci", "sd", "rel", "abs"}


def test_every_section_is_a_notebook_and_every_rule_is_well_formed(committed):
    notebooks = {p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert set(TOLERANCES) - {"*"} <= notebooks, "a section of TOLERANCES names no notebook"
    keys = {}
    for path, content in committed.items():
        keys.setdefault(Path(path).parent.name, set()).update(content["numbers"])
    for section, rules in TOLERANCES.items():
        for pattern, rule in rules.items():
            assert set(rule) <= FIELDS and rule, f"{section} {pattern!r}: unknown fields {set(rule) - FIELDS}"
            assert not (rule.get("exact") and set(rule) - {"exact"}), f"{section} {pattern!r}: exact and more"
            assert all(v >= 0 for f, v in rule.items() if f in ("rel", "abs")), f"{section} {pattern!r}"
            scope = keys.get(section, set()) if section != "*" else set().union(*keys.values())
            # a rule that matches no committed key is stale (renamed key) or mistyped
            assert any(fnmatchcase(k, pattern) for k in scope), f"{section} {pattern!r} matches no committed key"
            for k in scope:
                if fnmatchcase(k, pattern):
                    rule_for(section if section != "*" else "00_x", k)  # the companion names fill in


def test_rules_of_the_linear_probe():
    where, rule = rule_for("cifar10/06_linear_probe", "pca_pixel_probe_acc")
    assert where == "06_linear_probe '*_probe_acc'"
    assert rule["ci"] == ("pca_pixel_probe_ci_low", "pca_pixel_probe_ci_high")
    assert rule["sd"] == "pca_pixel_probe_acc_sd"
    # X_class_ami_std is the AMI of standardized phi, not a spread: its spread is X_class_ami_std_sd
    assert rule_for("06_linear_probe", "phi_class_ami_std")[1]["sd"] == "phi_class_ami_std_sd"
    assert rule_for("06_linear_probe", "phi_class_ami_std_sd")[0] == "* '*_sd'"
    assert rule_for("03_self_guided_reconstruction", "kid_pixels_guided_ci_low")[1]["ci"] == (
        "kid_pixels_guided_ci_low", "kid_pixels_guided_ci_high")
    assert rule_for("01_denoising_sparsity", "sigma")[1] == {"exact": True}


def test_allowance():
    numbers = {"a_ci_low": 0.1, "a_ci_high": 0.3, "a_sd": 0.04, "b_sd": 0.0}
    assert allowance({"ci": ("a_ci_low", "a_ci_high"), "sd": "a_sd"}, 0.2, 0.2, numbers) == (
        pytest.approx(0.1), "half the 95% interval a_ci_low..a_ci_high")
    assert allowance({"sd": "a_sd"}, 0.2, 0.2, numbers) == (pytest.approx(0.08), "2 x a_sd")
    assert allowance({"sd": "b_sd"}, 256.0, 256.0, numbers)[0] == pytest.approx(last_digit(256.0)) == 0.1
    assert allowance({"sd": "missing_sd"}, 2.0, 2.0, numbers)[0] == pytest.approx(0.005 + 0.03 * 2)
    assert allowance({"abs": 0.05}, 0.5, 0.5)[0] == pytest.approx(0.05)
    assert allowance({"rel": 0.1}, 200.0, 200.0)[0] == pytest.approx(20.0)
    assert allowance(tolerances.EXACT, 0.2, 0.2) == (0.0, "exact")


def test_compare_numbers_types():
    old = {"numbers": {"n": 3, "f": 1.0, "b": True, "s": "holds", "z": None}, "run": {"seed": 0}}
    assert compare_numbers(old, copy.deepcopy(old), "07_explorer") == []
    new = copy.deepcopy(old)
    new["numbers"].update(n=3.0, b=1, z=0.0, f=1)
    assert {f.key: f.why for f in compare_numbers(old, new, "07_explorer")} == {
        "n": "int -> float, exact", "b": "bool -> int, exact", "z": "null -> float, exact", "f": "float -> int, exact"}
