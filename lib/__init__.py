"""The importable library behind the notebooks, in layers that import one way only (bottom to top):
core, data, model, representation, sampling, measure, training, notebook, publish, tools.
Command-line entry points live beside it in ``scripts/``."""
