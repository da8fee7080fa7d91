#!/usr/bin/env bash
# Chromium for the Playwright browser tests of the YOHO web tool, for CI (.ci/run runs it;
# `make setup` does not: it never changes the system). Playwright's own browser download is not
# used: the tests drive the system Chromium at /usr/bin/chromium. Never fails: without Chromium
# the browser tests are skipped with the reason.
set -uo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: no apt-get here; install Chromium yourself (browser tests will be skipped)" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "install-browser: not root and no sudo; install chromium yourself (browser tests will be skipped)" >&2
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-browser: installing Debian's chromium (for the browser tests)"
$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || {
  $SUDO apt-get update -q >/dev/null 2>&1
  $SUDO apt-get install -y -q chromium >/dev/null 2>&1 || echo "install-browser: apt-get install chromium failed; browser tests will be skipped" >&2
}
exit 0
