#!/usr/bin/env bash
# Make sure the tests of deploy/observability/ have promtool (Debian's `prometheus` package), quietly and only
# when it is missing. The package's own daemon is not wanted here: its start at install is refused (the
# policy-rc.d convention, for this install only) and, should an init system have started it anyway, stopped.
set -euo pipefail

command -v promtool >/dev/null && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "ensure-tools: installing prometheus (for promtool)"
policy=/usr/sbin/policy-rc.d
added=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && added=1
fi
trap '[ -z "$added" ] || $SUDO rm -f "$policy"' EXIT
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# Where a service manager started it regardless, stop it: only promtool is wanted.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
elif [ -x /etc/init.d/prometheus ]; then
  $SUDO /etc/init.d/prometheus stop >/dev/null 2>&1 || true
fi
command -v promtool >/dev/null
