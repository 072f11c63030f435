import json

import pytest
import torch

from lib.model.checkpoint import CheckpointError, load_model, save_model
from lib.model.unet import UNet, preset


def test_roundtrip(tmp_path, tiny):
    stem = save_model(tmp_path / "m", tiny, {"dataset": "shapes"})
    m = load_model(stem)
    x = torch.rand(2, 3, 16, 16)
    assert torch.equal(m(x), tiny(x))
    assert m.checkpoint_metadata["dataset"] == "shapes"
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left


def test_missing_files(tmp_path, tiny):
    with pytest.raises(FileNotFoundError, match="nothere.safetensors"):
        load_model(tmp_path / "nothere")
    save_model(tmp_path / "m", tiny)
    (tmp_path / "m.json").unlink()
    with pytest.raises(FileNotFoundError, match="m.json"):
        load_model(tmp_path / "m")


def test_truncated_file(tmp_path, tiny):
    stem = save_model(tmp_path / "m", tiny)
    w = stem.with_suffix(".safetensors")
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="m.safetensors"):
        load_model(stem)


def test_config_weights_mismatch(tmp_path, tiny):
    stem = save_model(tmp_path / "m", tiny)
    d = json.loads(stem.with_suffix(".json").read_text())
    d["config"]["mid_width"] = 64
    stem.with_suffix(".json").write_text(json.dumps(d))
    with pytest.raises(CheckpointError, match="differs|do not match"):
        load_model(stem)


def test_weights_of_another_architecture(tmp_path, tiny):
    stem = save_model(tmp_path / "m", tiny)
    other = save_model(tmp_path / "o", UNet(preset("tiny", mid_width=24)))
    stem.with_suffix(".safetensors").write_bytes(other.with_suffix(".safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="m.safetensors"):
        load_model(stem)


def test_corrupt_json(tmp_path, tiny):
    stem = save_model(tmp_path / "m", tiny)
    stem.with_suffix(".json").write_text("{not json")
    with pytest.raises(CheckpointError, match="m.json"):
        load_model(stem)


def test_shipped_checkpoints_load():
    from lib.core.paths import CHECKPOINTS
    stems = sorted(p.with_suffix("") for p in CHECKPOINTS.glob("*.safetensors"))
    assert stems, "no shipped checkpoint"
    for s in stems:
        m = load_model(s)
        size = m.config.image_size
        assert m(torch.rand(1, 3, size, size)).shape == (1, 3, size, size)
