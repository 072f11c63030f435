"""Notebooks: committed without outputs, a `parameters` cell, and each runs in SMOKE mode in a real kernel."""
import json

import nbformat
import pytest

from lib.publish import runner

NBS = sorted(runner.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
REQUIRED = ("SMOKE", "DEVICE", "CHECKPOINT", "DATASET", "SEED")


def test_there_are_notebooks():
    assert len(NBS) >= 1


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_committed_without_outputs_and_with_parameters(nb):
    book = nbformat.read(nb, as_version=4)
    for i, c in enumerate(book.cells):
        if c.cell_type == "code":
            assert not c.outputs and c.execution_count is None, f"{nb.name} cell {i} has outputs"
    params = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, f"{nb.name}: expected one cell tagged 'parameters'"
    src = params[0].source
    for name in REQUIRED:
        assert f"{name} =" in src, f"{nb.name}: parameters cell lacks {name}"
    assert "import" not in src and "(" not in src.split("#")[0], f"{nb.name}: parameters must be literals"


MAX_CELL_LINES = 30  # a cell that defines more logic than this belongs in the notebook's lib/notebook module


@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_code_cells_are_short(nb):
    book = nbformat.read(nb, as_version=4)
    long = {i: len(c.source.splitlines()) for i, c in enumerate(book.cells)
            if c.cell_type == "code" and len(c.source.splitlines()) > MAX_CELL_LINES}
    assert not long, f"{nb.name}: code cells over {MAX_CELL_LINES} lines (cell: lines): {long}"


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NBS, ids=[p.stem for p in NBS])
def test_smoke_run_writes_figures(nb, tmp_path):
    times = runner.run(only=[nb.stem], smoke=True, rendered=tmp_path / "rendered", figures=tmp_path / "fig")
    assert times[nb.stem]["ok"]
    figs = list((tmp_path / "fig" / nb.stem).glob("*.png"))
    assert figs, f"{nb.name} wrote no figure"
    from lib.notebook.catalog import NOTEBOOKS
    uncaptioned = {p.stem for p in figs} - set(NOTEBOOKS[nb.stem].figures)
    assert not uncaptioned, f"{nb.name}: figures without a caption in lib/notebook/catalog.py: {sorted(uncaptioned)}"
    nums = json.loads((tmp_path / "fig" / nb.stem / "numbers.json").read_text())
    assert nums["numbers"] and nums["run"]["smoke"] is True and nums["run"]["notebook"] == nb.stem
    assert (tmp_path / "rendered" / f"{nb.stem}.html").stat().st_size > 1000
    assert "index.html" in {p.name for p in (tmp_path / "rendered").iterdir()}


def test_runner_names_failing_notebook_and_cell(tmp_path, monkeypatch):
    from nbformat.v4 import new_code_cell, new_notebook
    nb = new_notebook(cells=[new_code_cell("SMOKE = False", metadata={"tags": ["parameters"]}),
                             new_code_cell("x = 1"), new_code_cell("raise ValueError('bad cell')")],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    (tmp_path / "nbs").mkdir()
    nbformat.write(nb, tmp_path / "nbs" / "99_fails.ipynb")
    monkeypatch.setattr(runner, "NOTEBOOKS", tmp_path / "nbs")
    with pytest.raises(RuntimeError, match=r"99_fails.ipynb: cell \d+ .*ValueError: bad cell"):
        runner.run(smoke=True, rendered=tmp_path / "r", html_export=False)
