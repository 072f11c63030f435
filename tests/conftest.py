import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
# The content-keyed cache (lib.core.memo) is off in tests, so that every test computes what it checks (and the
# notebook kernels the tests start inherit it); tests/test_memo.py turns it on in a temporary folder.
os.environ["LIB_CACHE"] = "off"
# Compiling phi's extraction (lib.model.compiled) costs about 20 s per process and pays only on full-size runs;
# tests/test_compiled.py tests it, and the tests' notebook kernels inherit this and run eager.
os.environ["LIB_COMPILE"] = "off"
# Tests use tiny models: one thread is as fast, and on a busy 2-core machine OpenMP spin-waiting
# made two threads 15-40x slower.
torch.set_num_threads(1)


@pytest.fixture
def tiny():
    from lib.model.unet import UNet, preset
    torch.manual_seed(0)
    return UNet(preset("tiny")).eval()
