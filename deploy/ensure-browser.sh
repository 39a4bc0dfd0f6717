#!/usr/bin/env bash
# What the page tests need, on a fresh Debian machine as here: Debian's Chromium (Playwright drives it; its own
# browser download is not used) and axe-core from npm (tests/browser/package.json, pinned by its lock file).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver)
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-browser: installing ${missing[*]}"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -f tests/browser/node_modules/axe-core/axe.min.js ]; then
  echo "ensure-browser: installing axe-core"
  npm ci --prefix tests/browser --silent --no-audit --no-fund
fi
