#!/usr/bin/env bash
# Install what tests/test_browser.py needs: Debian's chromium and the playwright Python package.
# Idempotent and quick when both are present. Never runs `playwright install` (it would download its
# own browsers); the test drives /usr/bin/chromium through executable_path.
#   usage: .ci/install-browser.sh [path/to/pip]    (default: .venv/bin/pip, else pip)
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${1:-}"
if [ -z "$PIP" ]; then
    if [ -x .venv/bin/pip ]; then PIP=.venv/bin/pip; else PIP=pip; fi
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if [ -x /usr/bin/chromium ]; then
    echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
else
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium
fi

PY="$(dirname "$PIP")/python"
[ -x "$PY" ] || PY=python3
if "$PY" -c "import playwright" 2>/dev/null; then
    echo "playwright: already installed"
else
    "$PIP" install -q playwright
fi
