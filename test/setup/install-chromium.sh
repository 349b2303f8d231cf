#!/usr/bin/env bash
# Debian's chromium for test/server/dashboard.test.ts (driven by playwright-core, which never
# downloads a browser of its own). Idempotent: does nothing when /usr/bin/chromium is there.
# Needs root (CI and the dev machines run as root) and Debian's package archive; exits non-zero
# when chromium cannot be installed, so that CI stops here rather than at a skipped test.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-chromium: /usr/bin/chromium is missing and installing it needs root" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
echo "install-chromium: installing Debian's chromium (apt-get)…"
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "install-chromium: apt-get failed (output above)" >&2
  exit 1
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "install-chromium: apt-get succeeded but /usr/bin/chromium is not there" >&2
  exit 1
fi
echo "install-chromium: $(/usr/bin/chromium --version 2>/dev/null || echo 'chromium installed')"
