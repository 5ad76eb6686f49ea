#!/bin/sh
# Installs the browser the end-to-end tests (tests/e2e/) drive: Debian's chromium and
# chromium-driver, giving /usr/bin/chromium and /usr/bin/chromedriver. Does nothing when both
# are there; quiet otherwise; exits non-zero, saying why, when it cannot install them.
set -u
CHROMIUM=/usr/bin/chromium
DRIVER=/usr/bin/chromedriver

if [ -x "$CHROMIUM" ] && [ -x "$DRIVER" ]; then
    exit 0
fi

fail() {
    echo "install_browser.sh: $1" >&2
    echo "install_browser.sh: the browser tests (tests/e2e/) need $CHROMIUM and $DRIVER;" \
         "install Debian's chromium and chromium-driver packages." >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 || fail "no apt-get here (not Debian or Ubuntu)"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "not root and no sudo to run apt-get with"
    SUDO="sudo -n"
fi
LOG=$(mktemp) || fail "cannot create a temporary file"
trap 'rm -f "$LOG"' EXIT
if ! $SUDO apt-get update -qq >"$LOG" 2>&1 \
   || ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver >>"$LOG" 2>&1; then
    tail -n 20 "$LOG" >&2
    fail "apt-get could not install chromium and chromium-driver (its last lines are above)"
fi
[ -x "$CHROMIUM" ] || fail "apt-get finished but there is no $CHROMIUM"
[ -x "$DRIVER" ] || fail "apt-get finished but there is no $DRIVER"
