import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def tiny():
    from lib.unet import UNet, preset
    torch.manual_seed(0)
    return UNet(preset("tiny")).eval()
