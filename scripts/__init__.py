"""Command-line entry points: thin commands over lib (``python -m scripts.NAME --help``)."""
