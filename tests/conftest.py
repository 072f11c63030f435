import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
# Tests use tiny models: one thread is as fast, and on a busy 2-core machine OpenMP spin-waiting
# made two threads 15-40x slower.
torch.set_num_threads(1)


@pytest.fixture
def tiny():
    from lib.model.unet import UNet, preset
    torch.manual_seed(0)
    return UNet(preset("tiny")).eval()
