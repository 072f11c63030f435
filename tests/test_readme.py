"""The README's quickstart runs as written (on the tiny checkpoint, for speed), from the repository root."""
import os
import re
import subprocess
import sys

from lib.core.paths import ROOT


def quickstart() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Quickstart"):]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "README: no python block under ## Quickstart"
    return m.group(1)


def test_quickstart_snippet_runs(tmp_path):
    code = quickstart()
    assert 'CHECKPOINT = "data/checkpoints/tux32"' in code, "the quickstart should load the default checkpoint"
    code = code.replace('CHECKPOINT = "data/checkpoints/tux32"', 'CHECKPOINT = "data/checkpoints/tiny16"')
    script = tmp_path / "quickstart.py"
    script.write_text(code)
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "network evaluations" in r.stdout and "torch.Size([4, 3, 16, 16])" in r.stdout, r.stdout
