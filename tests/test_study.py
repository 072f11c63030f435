"""The factor study (lib.training.study) and the object-dominant composites it compares against the photo ones."""
import json

import numpy as np
import pytest

from lib.data import tuxphoto
from lib.data.datasets import load_dataset
from lib.publish.study_plots import save_study_curves
from lib.training import study


def test_object_style_same_draws_larger_objects_softer_backgrounds():
    a = tuxphoto.generate(24, size=16, seed=3)
    b = tuxphoto.generate(24, size=16, seed=3, style="object")
    np.testing.assert_array_equal(a["labels"], b["labels"])
    np.testing.assert_array_equal(a["factors"]["background"], b["factors"]["background"])
    lo, hi = tuxphoto.OBJECT_SCALE_RANGE
    assert lo <= b["factors"]["scale"].min() and b["factors"]["scale"].max() <= hi
    assert (b["factors"]["scale"] > a["factors"]["scale"]).all()
    # corners are mostly background: lower contrast there in the object style
    corner = lambda im: im[:, :, :3, :3].reshape(len(im), 3, -1).astype(float).std(axis=2).mean()  # noqa: E731
    assert corner(b["images"]) < corner(a["images"])
    assert load_dataset("tuxphoto-object", n=4, size=16).name == "tuxphoto-object"
    with pytest.raises(ValueError, match="style"):
        tuxphoto.generate(2, size=16, style="cartoon")


def test_load_study_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="study file not found"):
        study.load_study(tmp_path / "none.json")
    (tmp_path / "s.json").write_text(json.dumps({"base": {}, "runs": {}}))
    with pytest.raises(ValueError, match="'runs'"):
        study.load_study(tmp_path / "s.json")


def test_run_config_merges_model_overrides(tmp_path):
    cfg = study.run_config("x", {"preset": "tiny", "model": {"bias": False}}, {"model": {"norm": "batch"}}, tmp_path)
    assert cfg.model == {"bias": False, "norm": "batch"} and cfg.out == str(tmp_path / "x")


def test_shipped_study_file_is_valid():
    base, runs = study.load_study()
    assert "baseline" in runs and runs["baseline"] == {}
    for name, over in runs.items():
        study.run_config(name, base, over)  # TrainConfig validates every field


def test_tiny_study_runs_and_summarizes(tmp_path):
    spec = {"base": {"preset": "tiny", "dataset": "tuxphoto", "size": 16, "n_train": 128, "n_val": 16,
                     "batch_size": 16, "total_images": 64, "ckpt_every": 2, "log_every": 2,
                     "evidence_every_images": 32, "n_evidence": 40, "data_cache": str(tmp_path / "cache")},
            "runs": {"base": {}, "bn": {"model": {"norm": "batch"}}}}
    (tmp_path / "s.json").write_text(json.dumps(spec))
    with pytest.raises(ValueError, match="unknown runs"):
        study.run(["nope"], tmp_path / "s.json", tmp_path / "runs")
    study.run(None, tmp_path / "s.json", tmp_path / "runs", progress=False)
    res = study.summarize(tmp_path / "s.json", tmp_path / "runs", tmp_path / "out", n_final=60)
    rows = res["rows"]
    assert [(r["run"], r["images"]) for r in rows] == [("base", 32), ("base", 64), ("bn", 32), ("bn", 64)]
    assert rows[-1]["norm"] == "batch"
    assert set(res["controls"]) == {"base", "bn"} and set(res["pixels"]) == {"tuxphoto"}
    fin = res["finals"]
    assert set(fin) == {"base", "bn"} and fin["bn"]["norm"] == "batch" and fin["bn"]["n_images"] == 60
    assert fin["base"]["pixels"] == fin["bn"]["pixels"] and fin["base"]["trained"] != fin["bn"]["trained"]
    assert set(fin["base"]["psnr_gain"]) == {"0.05", "0.1", "0.2", "0.4", "0.8"}
    assert study.read_study(tmp_path / "out" / "study.jsonl") == res
    save_study_curves(res, tmp_path / "out" / "study_curves.png")
    table = (tmp_path / "out" / "study_table.md").read_text().splitlines()
    assert len(table) == 6 and table[2].startswith("| base | tuxphoto | scale | 0k") and "60 held-out" in table[-1]
    lines = study.study_findings(fin)
    assert len(lines) == 2 and lines[1].startswith("- **bn** (tuxphoto, batch norm")
    assert (tmp_path / "out" / "study_curves.png").stat().st_size > 10_000


def test_study_findings_read_liveness_and_skip_missing_factors():
    """A degenerate phi is not read against the controls, and a dataset without backgrounds prints no background
    AMI (it printed "nan" before)."""
    def rep(ami, acc, **kw):
        return {"class_ami": ami, "probe_acc": acc, "mid_pr_in": 0.5, "mid_pr_out": 0.3, **kw}
    base = {"dataset": "shapes", "norm": "scale", "images": 96_000}
    finals = {
        "dead": {**base, "trained": rep(0.9, 0.9, mid_varying_fraction=0.001), "untrained": rep(0.1, 0.1),
                 "pixels": rep(0.1, 0.1)},
        "live": {**base, "trained": rep(0.9, 0.9, mid_varying_fraction=0.4, evidence_sigma=0.2,
                                        background_ami=0.3), "untrained": rep(0.1, 0.1),
                 "pixels": rep(0.1, 0.1, background_ami=0.5)},
    }
    dead, live = study.study_findings(finals)
    assert "phi is degenerate" in dead and dead.endswith("on class: none (phi is degenerate).")
    assert "background" not in dead and "nan" not in dead and "; →" not in dead
    assert "sparsifies its input" in live and "background AMI 0.300 vs pixels 0.500" in live
    assert live.endswith("on class: k-means class AMI, probe accuracy.")
