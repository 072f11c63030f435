"""The package's layering: imports go one way (down the LAYERS list), no cycles, no private names across
modules, no imports hidden inside functions (except optional heavy dependencies), no command-line code."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib"
# Bottom to top: a module may import from its own sub-package or from one listed before it.
LAYERS = ["core", "data", "model", "representation", "sampling", "measure", "training", "notebook", "publish",
          "tools"]
# Third-party modules that may be imported inside a function: optional or heavy, only some paths need them.
LAZY_OK = {"tqdm", "tqdm.auto", "PIL", "scipy", "sklearn", "playwright", "papermill", "nbformat", "nbconvert",
           "torch.distributed", "torch.nn.parallel", "IPython", "IPython.display", "ipywidgets", "matplotlib",
           "matplotlib.pyplot",
           "seaborn", "pandas", "safetensors", "psutil", "mistune", "threadpoolctl",
           "numpy._core.multiarray", "numpy.core.multiarray"}  # the last two: numpy 2 / numpy 1 pickle shim


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
            for p in LIB.rglob("*.py")}


def imports(path: Path):
    """(imported lib module or external name, names, line, at module level) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    pkg = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                mod = f"{base}.{mod}" if mod else base
            yield mod, [a.name for a in node.names], node.lineno, id(node) in top
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, [], node.lineno, id(node) in top


def layer(mod: str) -> int:
    parts = mod.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 2 else -1


def lib_edges():
    mods = modules()
    for name, path in mods.items():
        for mod, names, line, _ in imports(path):
            if not mod.startswith("lib"):
                continue
            targets = [f"{mod}.{n}" for n in names if f"{mod}.{n}" in mods] or [mod]
            for t in targets:
                yield name, t, names, line


def test_every_module_is_in_a_layer():
    for name in modules():
        parts = name.split(".")
        assert len(parts) == 1 or parts[1] in LAYERS, f"{name}: sub-package not in LAYERS"
        assert len(parts) != 2 or parts[1] in LAYERS, f"{name}: modules live in a sub-package, not in lib/"


def test_imports_go_down_only():
    bad = [f"{a}:{line} imports {b}" for a, b, _, line in lib_edges() if layer(b) > layer(a)]
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_import_cycle():
    graph: dict[str, set[str]] = {}
    for a, b, _, _ in lib_edges():
        if b != a and not b.endswith("__init__"):
            graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}

    def visit(n, stack):
        state[n] = 1
        for m in graph.get(n, ()):
            if state.get(m) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(m):] + [m]))
            if not state.get(m):
                visit(m, stack + [m])
        state[n] = 2
    for n in list(graph):
        if not state.get(n):
            visit(n, [n])


def test_no_private_name_crosses_a_module():
    bad = [f"{a}:{line} imports {', '.join(n for n in names if n.startswith('_'))} from {b}"
           for a, b, names, line in lib_edges() if any(n.startswith("_") and not n.startswith("__") for n in names)]
    assert not bad, "\n".join(bad)


def test_no_import_inside_a_function():
    bad = []
    for name, path in modules().items():
        for mod, _, line, top in imports(path):
            if not top and (mod.startswith("lib") or not (mod in LAZY_OK or mod.split(".")[0] in LAZY_OK)):
                bad.append(f"{name}:{line} imports {mod} inside a function")
    assert not bad, "\n".join(bad)


def test_no_command_line_code_in_the_package():
    for name, path in modules().items():
        text = path.read_text()
        assert "argparse" not in text and '__name__ == "__main__"' not in text, \
            f"{name}: command-line code belongs in scripts/"


def test_each_notebook_module_serves_its_notebook_only():
    """lib/notebook/nbNN_*.py holds notebook NN's figures, tables and verdicts: notebook NN imports it, no other
    notebook and no library module does."""
    nb_mods = sorted(p.stem for p in (LIB / "notebook").glob("nb[0-9][0-9]_*.py"))
    assert len(nb_mods) == len(list((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        used = {m for m in nb_mods if m in nb.read_text()}
        assert used == {m for m in nb_mods if m[2:4] == nb.name[:2]}, f"{nb.name} imports {sorted(used)}"
    for a, b, _, line in lib_edges():
        assert not b.split(".")[-1].startswith("nb") or b == a, f"{a}:{line} imports notebook module {b}"


# Functions longer than MAX_FUNCTION_LINES that stay whole, each with the reason.
MAX_FUNCTION_LINES = 60
LONG_OK = {
    "lib/data/tuxphoto.py::_render_one": "the tuxphoto renderer: the order of its random draws defines every image "
                                          "of the dataset, so a split must keep the rendered bytes equal",
    "lib/representation/phi.py::noise_averaged": "the one images x noise-draws loop: one batched pipeline (noise "
                                                  "drawn in a thread pool, one forward pass per batch, outputs "
                                                  "gathered) whose formula its docstring states",
    "lib/notebook/schematic.py::plot_network": "a drawing: the boxes and arrows of the network, one after another",
    "lib/data/download.py::fetch_cifar10": "the order of the refusals (present, archive, URL, checksum), one line "
                                           "each; the steps are functions already",
    "lib/notebook/nb03_sampling.py::verdict_markdown": "prose: one sentence per measured claim",
}


def long_functions() -> dict[str, int]:
    out = {}
    for p in sorted(LIB.rglob("*.py")):
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = n.end_lineno - n.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    out[f"{p.relative_to(ROOT).as_posix()}::{n.name}"] = lines
    return out


def test_functions_are_split_where_a_reader_sees_steps():
    found = long_functions()
    extra = {k: v for k, v in found.items() if k not in LONG_OK}
    assert not extra, f"functions over {MAX_FUNCTION_LINES} lines (split them, or say why in LONG_OK): {extra}"
    assert set(LONG_OK) <= set(found), f"stale LONG_OK entries: {sorted(set(LONG_OK) - set(found))}"
