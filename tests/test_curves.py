"""Learning curves of the readout (lib.training.curves, scripts.curves) on a tiny run, and the gap fit on
cases with known answers."""
import json
import math
import shutil

import pytest

from lib.training.curves import RELIANCE_KEYS, curve_table, fit_gap, gap_row, measure_run, run_labels, snapshots
from lib.training.recipe import TrainConfig
from lib.training.trainer import Trainer
from scripts import curves as curves_cli


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("curves")
    cfg = TrainConfig(preset="tiny", dataset="shapes", size=16, n_train=128, n_val=16, batch_size=16, total_images=64,
                      snapshot_every_images=32, ckpt_every=2, out=str(root / "run"), data_cache=str(root / "cache"),
                      threads=1)
    Trainer(cfg).run(progress=False)
    return root / "run"


def test_snapshots_are_listed_in_order_with_the_final_model(run, tmp_path):
    assert [n for n, _ in snapshots(run)] == [32, 64]
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    for p in (copy / "snapshots").glob("img*64*"):
        p.unlink()
    assert [n for n, _ in snapshots(copy)] == [32, 64]  # the current model stands in for the missing snapshot
    assert [n for n, _ in snapshots(copy, current=False)] == [32]


def test_measure_run_records_controls_and_resumes(run, tmp_path):
    recs = measure_run(run, tmp_path, n_test=60, n_train=80)
    kinds = [r["kind"] for r in recs]
    assert kinds.count("pixels") == 1 and kinds.count("untrained") == 3 and kinds.count("trained") == 2
    pca = next(r for r in recs if r["kind"] == "pca_pixels")  # as many dimensions as phi, or as the images allow
    assert kinds.count("pca_pixels") == 1 and 0 < pca["dims"] <= 80 and 0 <= pca["knn_acc"] <= 1
    assert kinds.count("reliance") == 3 + 2 and kinds.count("psnr") == 2
    lines = (tmp_path / "curves.jsonl").read_text().splitlines()
    assert len(measure_run(run, tmp_path, n_test=60, n_train=80)) == len(recs)  # nothing measured twice
    assert (tmp_path / "curves.jsonl").read_text().splitlines() == lines
    t = curve_table(recs)
    assert [g["images_seen"] for g in t["gaps"]] == [32, 64]
    assert all(0 <= r["probe_acc"] <= 1 for r in t["trained"])
    assert all(k in r for r in t["trained"] for k in RELIANCE_KEYS) and all(k in t["untrained"] for k in RELIANCE_KEYS)


def test_a_second_run_of_the_same_architecture_reuses_the_controls(run, tmp_path):
    first = [r for r in measure_run(run, tmp_path, n_test=60, n_train=80) if r["kind"] == "untrained"]
    twin = tmp_path / "twin"
    shutil.copytree(run, twin)
    recs = measure_run(twin, tmp_path, n_test=60, n_train=80)
    controls = [r for r in recs
                if r["run"] == "twin" and (r["kind"] in ("pixels", "pca_pixels", "untrained") or "init_seed" in r)]
    assert len(controls) == 1 + 1 + 3 + 3 and all(r["copied_from"] == "run" for r in controls)
    assert [r["probe_acc"] for r in controls if r["kind"] == "untrained"] == [r["probe_acc"] for r in first]
    trained = [r for r in recs if r["run"] == "twin" and r["kind"] == "trained"]
    assert len(trained) == 2 and not any("copied_from" in r for r in trained)


def test_cli_writes_figure_table_and_fits(run, tmp_path):
    curves_cli.main([str(run), "--out", str(tmp_path), "--n-test", "60", "--n-train", "80"])
    assert (tmp_path / "curves.png").stat().st_size > 20_000
    assert "| run | images seen" in (tmp_path / "curves.md").read_text()
    assert set(json.loads((tmp_path / "fits.json").read_text())["run"]) == {"probe_acc", "knn_acc"}
    md = (tmp_path / "curves.md").read_text()
    assert "| run | last snapshot | probe gap | kNN gap | probe gap ≥ +0.05 at" in md
    lines = md.splitlines()
    row = lines[next(i for i, line in enumerate(lines) if line.startswith("| run | last snapshot")) + 2]
    assert "not yet (" in row or row.count(",") >= 1  # a measured crossing, or why not yet
    assert len(row.split("|")) == 10 and "(64)" in row  # the PSNR of the last snapshot, named


def test_runs_sharing_a_folder_name_are_both_measured_under_their_own_labels(run, tmp_path):
    """scripts.curves X/run Y/run measures both (it measured only the first when records were keyed by folder name)."""
    x, y = tmp_path / "x" / "run", tmp_path / "y" / "run"
    shutil.copytree(run, x)
    shutil.copytree(run, y)
    out = tmp_path / "out"
    curves_cli.main([str(x), str(y), "--out", str(out), "--n-test", "60", "--n-train", "80"])
    recs = [json.loads(line) for line in (out / "curves.jsonl").read_text().splitlines()]
    assert {r["run"] for r in recs if r["kind"] == "trained"} == {"x/run", "y/run"}
    assert sum(r["kind"] == "trained" for r in recs) == 4
    assert all(len(r["weights_sha256"]) == 16 for r in recs if r["kind"] == "trained")
    assert run_labels([tmp_path / "a" / "ema", tmp_path / "b"]) == ["a/ema", "b"]
    with pytest.raises(ValueError, match="named twice"):
        run_labels([x, x])


def test_a_folder_holding_another_trajectory_is_refused(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    out = tmp_path / "out"
    measure_run(copy, out, n_test=60, n_train=80)
    other = tmp_path / "other"
    cfg = TrainConfig(preset="tiny", dataset="shapes", size=16, n_train=128, n_val=16, batch_size=16, total_images=64,
                      snapshot_every_images=32, ckpt_every=2, out=str(other), data_cache=str(tmp_path / "cache"),
                      threads=1, seed=7)
    Trainer(cfg).run(progress=False)
    shutil.rmtree(copy)
    shutil.copytree(other, copy)  # same folder name, other weights at the same images seen
    with pytest.raises(ValueError, match="another trajectory"):
        measure_run(copy, out, n_test=60, n_train=80)


def test_gap_row_takes_the_best_control_and_a_binomial_interval():
    g = gap_row({"images_seen": 10, "n_test": 1000, "probe_acc": 0.6, "knn_acc": 0.5},
                {"probe_acc": 0.4, "knn_acc": 0.55}, {"probe_acc": (0.5, 0.0), "knn_acc": (0.3, 0.1)})
    assert g["probe_acc"]["best_control"] == "untrained" and g["probe_acc"]["gap"] == pytest.approx(0.1)
    se = math.sqrt(0.6 * 0.4 / 1000 + 0.5 * 0.5 / 1000)
    assert g["probe_acc"]["low"] == pytest.approx(0.1 - 1.96 * se)
    assert g["knn_acc"]["best_control"] == "pixels" and g["knn_acc"]["gap"] == pytest.approx(-0.05)
    g = gap_row({"images_seen": 10, "n_test": 1000, "probe_acc": 0.6, "knn_acc": 0.5},
                {"probe_acc": 0.4, "knn_acc": 0.55}, {"probe_acc": (0.5, 0.0), "knn_acc": (0.3, 0.1)},
                pca={"probe_acc": 0.45, "knn_acc": 0.58})
    assert g["probe_acc"]["best_control"] == "untrained"
    assert g["knn_acc"]["best_control"] == "pca_pixels" and g["knn_acc"]["gap"] == pytest.approx(-0.08)


def _gaps(f):
    return [{"images_seen": n, "probe_acc": {"gap": f(math.log10(n))}} for n in (1e4, 5e4, 1e5, 1e6, 1e7)]


def test_fit_gap_recovers_a_line_and_where_it_reaches_the_margin():
    f = fit_gap(_gaps(lambda x: -0.2 + 0.05 * x))  # the 10^4 point lies below min_images
    assert (f["n_points"] == 4 and f["slope_per_decade"] == pytest.approx(0.05)
            and f["slope_se"] == pytest.approx(0, abs=1e-9))
    assert f["reaches_margin_at"] == pytest.approx(1e5)  # -0.2 + 0.05 * 5 = 0.05


def test_fit_gap_never_reaches_the_margin_when_the_gap_falls():
    assert fit_gap(_gaps(lambda x: 0.01 - 0.01 * x))["reaches_margin_at"] is None
    assert fit_gap(_gaps(lambda x: 0.0)[:2])["slope_per_decade"] is None


def test_a_torn_or_corrupt_curves_file_is_named_and_a_torn_tail_is_cut(run, tmp_path):
    measure_run(run, tmp_path, n_test=60, n_train=80)
    path = tmp_path / "curves.jsonl"
    good = path.read_text()
    path.write_text(good + '{"run": "run", "kind": "trai')  # a writer killed mid-line
    assert len(measure_run(run, tmp_path, n_test=60, n_train=80)) == len(good.splitlines())
    path.write_text('{"run": \n' + good)
    with pytest.raises(ValueError, match="curves.jsonl.*line 1"):
        measure_run(run, tmp_path, n_test=60, n_train=80)
