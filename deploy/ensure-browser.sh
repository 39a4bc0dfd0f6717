#!/usr/bin/env bash
# Make sure the real-browser tests (tests/browser) have what they need, quietly and only what is missing:
# Debian's Chromium (Playwright's own browser download is not used), Node.js and npm, and axe-core from npm at
# the version pinned in tests/browser/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium chromium-driver)
command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-browser: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

modules=tests/browser/node_modules
if [ ! -f "$modules/axe-core/axe.min.js" ] || [ tests/browser/package-lock.json -nt "$modules/.package-lock.json" ]; then
  echo "ensure-browser: installing axe-core (npm ci)"
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error >/dev/null
fi
