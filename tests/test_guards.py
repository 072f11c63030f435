"""Issue 27 ("nothing lost, nothing silent, part two"): each numbered case that destroyed files or gave a silently
wrong answer, tried the way a new user would, with the right behaviour asserted. The sweep of every argument of
every command is tests/test_cli_sweep.py; shipping under an extension's name (case 1) is in test_faults.py."""
import json
import os
import re
from pathlib import Path

import pytest

from fileguard import run_command, snapshot
from lib.core.checks import read_json, read_jsonl
from lib.core.paths import CHECKPOINTS, FIGURES, ROOT
from lib.publish import runner
from scripts import notebooks as notebooks_cli

TINY = str(CHECKPOINTS / "tiny16")


@pytest.fixture(autouse=True)
def repository_unchanged():
    """No case may touch the committed figures, checkpoints or README."""
    before = snapshot(CHECKPOINTS, FIGURES, ROOT / "README.md", skip=[FIGURES / "rendered"])
    yield
    assert snapshot(CHECKPOINTS, FIGURES, ROOT / "README.md", skip=[FIGURES / "rendered"]) == before


def cli(main, argv, capsys):
    """(exit code, stderr) of a command run in-process through run_cli."""
    code, _, err = run_command(main, argv, capsys)
    return code, err


@pytest.fixture
def fake_papermill(monkeypatch, tmp_path):
    """papermill.execute_notebook replaced by a recorder: (notebook, parameters, LIB_FIGURES_DIR) per call."""
    import papermill
    calls = []

    def execute(nb, out, parameters=None, **kw):
        calls.append((Path(nb).stem, dict(parameters or {}), os.environ.get("LIB_FIGURES_DIR")))
        Path(out).write_text("{}")
        if getattr(execute, "during", None):
            hook, execute.during = execute.during, None
            hook()
    monkeypatch.setattr(papermill, "execute_notebook", execute)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    execute.calls = calls
    return execute


# ----------------------------------------------------------------------------- case 2: -p SMOKE True
def test_p_smoke_is_a_smoke_run(fake_papermill, tmp_path, capsys):
    """`scripts.notebooks --only 02 -p SMOKE True` once wrote the tiny model's figures into the committed
    figures/ and recorded a full run in times.json."""
    rendered = tmp_path / "r"
    code, err = cli(notebooks_cli.main, ["--only", "02", "-p", "SMOKE", "True", "--rendered", rendered, "--no-html"],
                    capsys)
    assert code == 0, err
    (stem, params, figdir), = fake_papermill.calls
    assert params["SMOKE"] is True and figdir and not runner._inside(figdir, FIGURES)
    assert read_json(rendered / "times.json")[stem]["smoke"] is True
    assert not list((tmp_path / "tmp").iterdir())  # the temporary figures folder is removed
    code, err = cli(notebooks_cli.main, ["--only", "02", "-p", "SMOKE", "true", "--figures", FIGURES / "02x",
                                         "--rendered", rendered], capsys)
    assert code != 0 and "a --smoke run (tiny model) would overwrite the committed" in err
    assert len(fake_papermill.calls) == 1


def test_changed_parameters_never_write_the_committed_figures(fake_papermill, tmp_path, capsys):
    """Only the full pipeline writes figures/: -p CHECKPOINT (or N_IMAGES...) on the default paths is refused
    before any notebook runs; an explicit --figures is allowed; DEVICE is not a change of what is measured."""
    code, err = cli(notebooks_cli.main, ["--only", "02", "-p", "CHECKPOINT", TINY, "--rendered", tmp_path / "r"],
                    capsys)
    assert code != 0 and re.search(r"^error: -p CHECKPOINT: a run with changed parameters .* --figures", err), err
    assert not fake_papermill.calls and err.count("\n") == 1
    code, err = cli(notebooks_cli.main, ["--only", "02", "-p", "CHECKPOINT", TINY, "--rendered", tmp_path / "r",
                                         "--figures", tmp_path / "f", "--no-html"], capsys)
    assert code == 0, err
    assert fake_papermill.calls[-1][2] == str(tmp_path / "f")


def test_smoke_ignores_no_parameter_silently(fake_papermill, tmp_path, capsys):
    code, err = cli(notebooks_cli.main, ["--only", "02", "--smoke", "-p", "CHECKPOINT", TINY], capsys)
    assert code != 0 and "-p CHECKPOINT: a smoke run uses the tiny checkpoint" in err
    code, err = cli(notebooks_cli.main, ["--only", "02", "--smoke", "-p", "SMOKE", "False"], capsys)
    assert code != 0 and "-p SMOKE False: contradicts --smoke" in err
    assert not fake_papermill.calls


@pytest.mark.parametrize("name, value, want", [
    ("N_IMAGES", "abc", r"-p N_IMAGES: expected an integer \(default 1000\), got 'abc'"),
    ("N_IMAGES", "10.5", r"-p N_IMAGES: expected an integer \(default 1000\), got 10\.5"),
    ("SIGMA", "low", r"-p SIGMA: expected a finite number"),
    ("SMOKE", "maybe", r"-p SMOKE: expected one of"),
    ("DATASET", "true", r"-p DATASET: expected a string"),
])
def test_parameter_values_fit_their_defaults(fake_papermill, tmp_path, capsys, name, value, want):
    code, err = cli(notebooks_cli.main, ["--only", "02", "-p", name, value, "--figures", tmp_path / "f",
                                         "--rendered", tmp_path / "r"], capsys)
    assert code != 0 and re.search(want, err), err
    assert not fake_papermill.calls


def test_smoke_runs_leave_no_temporary_folders(fake_papermill, tmp_path, capsys):
    code, err = cli(notebooks_cli.main, ["--only", "01", "02", "--smoke", "--no-html"], capsys)
    assert code == 0, err
    assert len(fake_papermill.calls) == 2 and all(c[1]["SMOKE"] is True for c in fake_papermill.calls)
    assert not list((tmp_path / "tmp").iterdir())


# ------------------------------------------------------------------ case 8: two runs sharing --rendered
def test_two_runs_sharing_rendered_keep_each_others_times(fake_papermill, tmp_path, capsys):
    """A second scripts.notebooks run that finishes while the first is running: both entries are kept
    (times.json is merged under a lock, not overwritten with what the first run read when it started)."""
    rendered = tmp_path / "r"
    rendered.mkdir()
    (rendered / "times.json").write_text(json.dumps({"00_old": {"seconds": 5.0, "ok": True, "smoke": False}}))
    fake_papermill.during = lambda: runner.run(only=["03"], rendered=rendered, figures=tmp_path / "f2",
                                               html_export=False)
    runner.run(only=["02"], rendered=rendered, figures=tmp_path / "f1", html_export=False)
    times = read_json(rendered / "times.json")
    assert set(times) == {"00_old", "02_channel_selectivity", "03_self_guided_reconstruction"}


def test_times_are_merged_by_concurrent_processes(tmp_path):
    """Eight processes each merging their own key into one times.json: none is lost."""
    import subprocess
    import sys
    path = tmp_path / "times.json"
    code = ("import sys, time; from lib.core.files import merge_json\n"
            "for i in range(5):\n"
            "    merge_json(sys.argv[1], {f'{sys.argv[2]}-{i}': i})\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), f"p{k}"], cwd=ROOT) for k in range(8)]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert len(read_json(path)) == 40


# --------------------------------------------------------------- case 3: evidence never writes by default
def _snapshots(tmp_path) -> Path:
    import shutil
    snaps = tmp_path / "run" / "snapshots"
    snaps.mkdir(parents=True)
    for ext in (".safetensors", ".json"):
        shutil.copyfile(CHECKPOINTS / f"tiny16{ext}", snaps / f"img000000064{ext}")
    return snaps


def test_evidence_snapshots_need_an_explicit_out(tmp_path, monkeypatch, capsys):
    """`scripts.evidence --snapshots RUN/snapshots` with the default --out once overwrote figures/evidence/."""
    from scripts import evidence as evidence_cli
    work = []
    monkeypatch.setattr(evidence_cli, "snapshot_curves", lambda *a, **k: work.append(a))
    monkeypatch.setattr(evidence_cli, "default_evidence", lambda *a, **k: work.append(a) or {})
    snaps = _snapshots(tmp_path)
    code, err = cli(evidence_cli.main, ["--snapshots", snaps], capsys)
    assert code != 0 and "--out: required with --snapshots" in err and not work
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = cli(evidence_cli.main, ["--snapshots", empty, "--out", tmp_path / "o"], capsys)
    assert code != 0 and re.search(r"--snapshots: no snapshots .* in .*empty", err) and not work
    code, err = cli(evidence_cli.main, ["--snapshots", snaps, "--out", tmp_path / "o", "-n", "8"], capsys)
    assert code == 0 and len(work) == 2, err


def test_evidence_on_an_empty_folder_is_one_line(tmp_path):
    import subprocess
    import sys
    (tmp_path / "empty").mkdir()
    r = subprocess.run([sys.executable, "-m", "scripts.evidence", "--snapshots", str(tmp_path / "empty"), "--out",
                        str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "o").exists()


# ----------------------------------------------------------------- case 4: report --figures with a typo
def test_report_refuses_a_figures_folder_without_numbers(tmp_path, monkeypatch, capsys):
    """`scripts.report --figures figurs` once replaced the README's scorecard with "No numbers.json yet" and
    created figurs/site."""
    from scripts import report as report_cli
    monkeypatch.chdir(tmp_path)
    code, err = cli(report_cli.main, ["--figures", "figurs"], capsys)
    assert code != 0 and "argument --figures: figurs: no such folder" in err and not (tmp_path / "figurs").exists()
    (tmp_path / "empty").mkdir()
    code, err = cli(report_cli.main, ["--figures", "empty"], capsys)
    assert code != 0 and "--figures: empty holds no NN_name/numbers.json" in err
    assert list((tmp_path / "empty").iterdir()) == []
    import shutil
    shutil.copytree(FIGURES / "01_denoising_sparsity", tmp_path / "figs" / "01_denoising_sparsity")
    code, err = cli(report_cli.main, ["--figures", "figs"], capsys)
    assert code != 0 and "the committed README is generated from the committed" in err
    assert not (tmp_path / "figs" / "site").exists()
    readme = tmp_path / "README.md"
    readme.write_text((ROOT / "README.md").read_text())
    code, err = cli(report_cli.main, ["--figures", "figs", "--readme", readme], capsys)
    assert code == 0, err
    assert (tmp_path / "figs" / "site" / "index.html").is_file()


# ----------------------------------------------------------- case 6: reliance sigmas in the trained range
@pytest.mark.parametrize("sigmas, want", [(["25"], r"--sigmas: 25(\.0)? is far above"),
                                          (["1e20"], r"--sigmas: 1e\+20 is far above"),
                                          (["-1"], r"--sigmas: expected a finite number >= 0, got '-1'"),
                                          (["0"], r"--sigmas: 0 is outside the range .*tiny16 was trained on \(0, 1\]"),
                                          (["0.2", "1.5"], r"--sigmas: 1\.5 is outside the range"),
                                          (["nan"], r"--sigmas: expected a finite number"),
                                          (["0.2", "0.2"], r"--sigmas: 0\.2 given twice")])
def test_reliance_sigmas_inside_the_checkpoints_range(tmp_path, monkeypatch, capsys, sigmas, want):
    from scripts import reliance as reliance_cli
    work = []
    monkeypatch.setattr(reliance_cli, "reliance_by_block", lambda *a, **k: work.append(a) or {})
    code, err = cli(reliance_cli.main, [TINY, "--dataset", "shapes", "--out", tmp_path / "o", "--n", "4",
                                        "--sigmas", *sigmas], capsys)
    assert code != 0 and re.search(want, err), err
    assert err.count("\n") == 1 and not work and not (tmp_path / "o").exists()


# ------------------------------------------------------------------- every JSON reader names file and line
def test_json_readers_name_the_file_and_line(tmp_path, capsys):
    from lib.model.checkpoint import load_model
    from lib.notebook.numbers import read_numbers
    from scripts import reliance as reliance_cli
    torn = '{\n "numbers": {"a": 1,\n "b": '
    (tmp_path / "numbers.json").write_text(torn)
    with pytest.raises(ValueError, match=r"numbers\.json: .* not valid JSON .* line 3"):
        read_numbers(tmp_path / "numbers.json")
    import shutil
    for ext in (".safetensors", ".json"):
        shutil.copyfile(CHECKPOINTS / f"tiny16{ext}", tmp_path / f"m{ext}")
    (tmp_path / "m.json").write_text('{"config": {\n"widths": [8, 16')
    with pytest.raises(ValueError, match=r"m\.json: .*line 2"):
        load_model(tmp_path / "m")
    (tmp_path / "r.jsonl").write_text('{"a": 1}\n{"a": 2\n{"a": 3}\n')
    with pytest.raises(ValueError, match=r"r\.jsonl: .*line 2 is not a JSON record"):
        read_jsonl(tmp_path / "r.jsonl")
    (tmp_path / "t.jsonl").write_text('{"a": 1}\n{"a": 2')
    assert read_jsonl(tmp_path / "t.jsonl", skip_torn_last=True) == [{"a": 1}]
    out = tmp_path / "o"
    out.mkdir()
    (out / "reliance.json").write_text('{"x": {\n')
    code, err = cli(reliance_cli.main, [TINY, "--dataset", "shapes", "--out", out, "--n", "2", "--sigmas", "0.2"],
                    capsys)
    assert code != 0 and re.search(r"reliance\.json: reliance tables is not valid JSON .*line 2", err), err
