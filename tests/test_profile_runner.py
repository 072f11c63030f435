"""Where `make figures` spends its seconds, and running notebooks side by side: each kernel writes its stage seconds
(lib.core.profile, LIB_PROFILE set by the runner), the runner merges them into profile.json beside times.json
(and, for a run that is not a smoke run, into <figures>/profile.json, the README's ``figures-profile`` table);
``--jobs N`` runs N notebooks at once with LIB_THREADS = cores // N and loses no notebook's entries;
``scripts.bench --figures`` prints the profile or says which command makes one."""
import json
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from fileguard import run_command, snapshot
from lib.core.checks import read_json
from lib.core.paths import FIGURES, ROOT
from lib.publish import readme, runner
from scripts import bench as bench_cli
from scripts import notebooks as notebooks_cli

KERNELSPEC = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}


@pytest.fixture(autouse=True)
def committed_unchanged():
    """No case may write the committed figures (figures/profile.json included) or the README."""
    before = snapshot(FIGURES, ROOT / "README.md", skip=[FIGURES / "rendered"])
    yield
    assert snapshot(FIGURES, ROOT / "README.md", skip=[FIGURES / "rendered"]) == before


def cli(main, argv, capsys):
    """(exit code, stdout, stderr) of a command run in-process through run_cli."""
    return run_command(main, argv, capsys)


def _notebooks(folder, bodies: dict):
    """Write tiny notebooks {stem: cell source} (with a parameters cell) into ``folder``."""
    folder.mkdir()
    for stem, body in bodies.items():
        nb = new_notebook(cells=[new_code_cell("SMOKE = False", metadata={"tags": ["parameters"]}),
                                 new_code_cell(body)], metadata=KERNELSPEC)
        nbformat.write(nb, folder / f"{stem}.ipynb")


STAGED = ("import os, time\nfrom lib.core.profile import stage\n"
          "with stage('kmeans'):\n    time.sleep(0.4)\n"
          "with stage('plotting'):\n    time.sleep(0.2)\n"
          "print('env', os.environ.get('LIB_THREADS'), os.environ.get('LIB_PROFILE'))")


def _printed(ipynb) -> str:
    nb = nbformat.read(ipynb, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.mark.notebook
def test_smoke_run_writes_and_merges_the_profile(tmp_path, capsys):
    """A real smoke notebook (05: k-means and figures) with --jobs 2 next to 07: each kernel's profile file,
    both notebooks in times.json and profile.json (an older entry kept), stages that add up, the printed
    table; a smoke run writes no <figures>/profile.json."""
    rendered, figs = tmp_path / "r", tmp_path / "f"
    rendered.mkdir()
    old = {"00_old": {"total": 5.0, "stages": {}, "other": 5.0, "ok": True}}
    (rendered / "profile.json").write_text(json.dumps(old))
    code, out, err = cli(notebooks_cli.main, ["--smoke", "--only", "05", "07", "--jobs", "2", "--rendered", rendered,
                                              "--figures", figs, "--no-html"], capsys)
    assert code == 0, err
    stems = {"05_clustering", "07_explorer"}
    assert set(read_json(rendered / "times.json")) == stems
    prof = read_json(rendered / "profile.json")
    assert set(prof) == stems | {"00_old"} and prof["00_old"] == old["00_old"]
    km = prof["05_clustering"]
    assert km["ok"] and km["stages"].get("kmeans", 0) > 0 and km["stages"].get("plotting", 0) > 0, km
    assert abs(km["total"] - sum(km["stages"].values()) - km["other"]) <= 0.2 and km["other"] >= 0
    kernel = read_json(rendered / "profile" / "05_clustering.json")
    assert kernel["kmeans"] == pytest.approx(km["stages"]["kmeans"], abs=0.06)
    assert not (figs / "profile.json").exists()  # a smoke run never writes the committed kind of profile
    assert "running 2 notebooks, 2 at a time" in out
    table = out[out.index("seconds per notebook and stage"):]
    assert "total s" in table and "kmeans" in table and "05_clustering" in table and "07_explorer" in table


def test_jobs_run_side_by_side_and_report_failures(tmp_path, monkeypatch, capsys):
    """--jobs 2 over three tiny notebooks, one failing: every kernel gets LIB_THREADS = cores // 2 and its own
    LIB_PROFILE; the failure names its notebook and cell and exits non-zero after the others ran; times.json
    and profile.json have all three (the failed one marked); the pool's notebooks are really concurrent."""
    meet = ("import pathlib, time\nd = pathlib.Path({d!r})\n(d / {me!r}).touch()\nt0 = time.time()\n"
            "while not (d / {other!r}).exists() and time.time() - t0 < 20:\n    time.sleep(0.05)\n"
            "print('concurrent', (d / {other!r}).exists())\n")
    (tmp_path / "meet").mkdir()
    bodies = {"91_a": meet.format(d=str(tmp_path / "meet"), me="a", other="b") + STAGED,
              "92_b": meet.format(d=str(tmp_path / "meet"), me="b", other="a") + STAGED,
              "93_fails": "raise ValueError('bad cell')"}
    _notebooks(tmp_path / "nbs", bodies)
    monkeypatch.setattr(runner, "NOTEBOOKS", tmp_path / "nbs")
    monkeypatch.delenv("LIB_THREADS", raising=False)
    rendered = tmp_path / "r"
    code, out, err = cli(notebooks_cli.main, ["--smoke", "--jobs", "2", "--rendered", rendered,
                                              "--figures", tmp_path / "f"], capsys)
    assert code == 1 and "93_fails.ipynb: cell" in err and "ValueError: bad cell" in err, err
    times, prof = read_json(rendered / "times.json"), read_json(rendered / "profile.json")
    assert set(times) == set(prof) == set(bodies)
    assert times["91_a"]["ok"] and times["92_b"]["ok"] and not times["93_fails"]["ok"] and not prof["93_fails"]["ok"]
    want = str(max(1, runner.cores() // 2))
    for stem in ("91_a", "92_b"):
        printed = _printed(rendered / f"{stem}.ipynb")
        assert "concurrent True" in printed and f"env {want} {rendered / 'profile' / stem}.json" in printed, printed
        assert prof[stem]["stages"]["kmeans"] >= 0.4 and prof[stem]["stages"]["plotting"] >= 0.2
    assert "93_fails (FAILED)" in out and "index.html" in os.listdir(rendered)
    page = (rendered / "index.html").read_text()
    assert all(stem in page for stem in bodies)


def test_full_run_merges_the_committed_profile(tmp_path, monkeypatch, capsys):
    """A run that is not a smoke run (here into a temporary --figures) merges its notebook into
    <figures>/profile.json, stable JSON rounded to 0.1 s, keeping the other notebooks' entries; one notebook
    at a time (the default) sets no LIB_THREADS."""
    _notebooks(tmp_path / "nbs", {"91_a": STAGED})
    monkeypatch.setattr(runner, "NOTEBOOKS", tmp_path / "nbs")
    monkeypatch.delenv("LIB_THREADS", raising=False)
    figs, rendered = tmp_path / "f", tmp_path / "r"
    figs.mkdir()
    (figs / "profile.json").write_text(json.dumps({"90_kept": {"total": 1.0, "stages": {}, "other": 1.0, "ok": True}}))
    runner.run(rendered=rendered, figures=figs, html_export=False)
    text = (figs / "profile.json").read_text()
    got = json.loads(text)
    assert set(got) == {"90_kept", "91_a"} and text == json.dumps(got, indent=2, sort_keys=True) + "\n"
    a = got["91_a"]
    assert all(round(v, 1) == v for v in [a["total"], a["other"], *a["stages"].values()])
    assert a["stages"]["kmeans"] >= 0.4
    assert "env None" in _printed(rendered / "91_a.ipynb")
    # the README block renders from that file
    block = readme.profile_block(figs / "profile.json")
    head = "| notebook | total s | extraction | probes | kmeans | sampling | plotting | other |"
    assert block.splitlines()[0] == head
    assert f"| 91_a | {a['total']:.1f} | – | – | {a['stages']['kmeans']:.1f} | – |" in block


def test_readme_block_from_a_profile_file(tmp_path):
    """The figures-profile block: one row per notebook (stages it never entered as "–", extra stages such as
    cache as their own column), an "all" row, and a line naming `make figures` when there is no profile."""
    assert "not found: run `make figures`" in readme.profile_block(tmp_path / "profile.json")
    prof = {"02_x": runner.profile_entry(30.04, {"extraction": 10.0, "plotting": 2.5}),
            "05_y": runner.profile_entry(20.0, {"kmeans": 7.25, "cache": 1.0}, ok=False)}
    (tmp_path / "profile.json").write_text(json.dumps(prof))
    lines = readme.profile_block(tmp_path / "profile.json").splitlines()
    assert lines[:5] == [
        "| notebook | total s | extraction | probes | kmeans | sampling | plotting | cache | other |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        "| 02_x | 30.0 | 10.0 | – | – | – | 2.5 | – | 17.5 |",
        "| 05_y (FAILED) | 20.0 | – | – | 7.2 | – | – | 1.0 | 11.8 |",
        "| all | 50.0 | 10.0 | – | 7.2 | – | 2.5 | 1.0 | 29.3 |"]
    assert readme.blocks(tmp_path)["figures-profile"] == "\n".join(lines)
    text = "a\n<!-- figures-profile:begin -->\nold\n<!-- figures-profile:end -->\n"
    block = {"figures-profile": readme.blocks(tmp_path)["figures-profile"]}
    assert readme.render_readme(text, block).startswith("a\n<!-- figures-profile:begin -->\n| notebook | total s")


def test_bench_figures_prints_the_profile_or_names_the_command(tmp_path, monkeypatch, capsys):
    from lib.tools import bench
    monkeypatch.setattr(bench, "FIGURES_PROFILE", tmp_path / "rendered" / "profile.json")
    code, out, err = cli(bench_cli.main, ["--figures"], capsys)
    assert code == 1 and err.count("\n") == 1 and "python -m scripts.notebooks" in err and "make figures" in err, err
    assert str(tmp_path / "rendered" / "profile.json") in err and not out
    prof = {"02_x": runner.profile_entry(3.0, {"plotting": 1.0})}
    (tmp_path / "rendered").mkdir()
    (tmp_path / "rendered" / "profile.json").write_text(json.dumps(prof))
    code, out, err = cli(bench_cli.main, ["--figures"], capsys)
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {"figures_profile": prof}


def test_longest_first_orders_by_the_last_full_run(tmp_path):
    prof = tmp_path / "profile.json"
    prof.write_text(json.dumps({"01_a": {"total": 200.0}, "03_b": {"total": 700.0}, "06_c": {"total": 650.0},
                                "02_d": {"total": 10.0}}))
    stems = ["01_a", "02_d", "03_b", "05_new", "06_c"]
    assert runner.longest_first(stems, prof) == ["05_new", "03_b", "06_c", "01_a", "02_d"]
    assert runner.longest_first(stems, tmp_path / "none.json") == sorted(stems)   # no record: notebook order
    prof.write_text("{trunc")
    assert runner.longest_first(stems, prof) == sorted(stems)                      # unreadable: notebook order
