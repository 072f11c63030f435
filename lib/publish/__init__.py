"""Turning notebook runs into shared artefacts: the papermill runner, the README's generated blocks and
scorecard, the results site, the explorer screenshot, the factor study's curves."""
