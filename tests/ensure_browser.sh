#!/usr/bin/env bash
# What the browser tests (tests/e2e/browser) need, installed by the project itself: Debian's Chromium
# (Playwright drives it; its own browser download is never used) and axe-core from the npm registry.
# Fails loudly: in CI a missing browser is an error, never a reason to skip the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

chromium_bin=${BILLING_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium_bin" ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "FATAL: no Chromium at $chromium_bin; install Debian's chromium package (apt-get install chromium)" \
         "or point BILLING_CHROMIUM at a Chromium binary" >&2
    exit 1
  fi
  echo "Installing Debian's chromium for the browser tests"
  # A fresh machine's package lists may be stale: refresh them once if the first try fails.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi
"$chromium_bin" --version >/dev/null 2>&1 || { echo "FATAL: $chromium_bin does not run" >&2; exit 1; }

browser_dir=tests/e2e/browser
if [ ! -f "$browser_dir/node_modules/axe-core/axe.min.js" ] \
   || [ "$browser_dir/package-lock.json" -nt "$browser_dir/node_modules/.package-lock.json" ]; then
  command -v npm >/dev/null 2>&1 || { echo "FATAL: npm is needed for axe-core (tests/e2e/browser)" >&2; exit 1; }
  (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
