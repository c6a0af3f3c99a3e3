#!/usr/bin/env bash
# Makes sure a Chromium is installed for the browser tests of the web
# dashboard (cmd/medallion/ui_browser_test.go, headless through chromedp).
# One already there is used as it is. A missing one is installed from
# Debian's packages as root (or with sudo), said out loud. If that cannot
# work, it says how to install it and that the browser tests will be
# skipped, and still exits 0: a missing browser never fails `make test`.
set -uo pipefail

found() { # path
	echo "==> Chromium for the browser tests: $1 ($("$1" --version 2>/dev/null | head -n 1 || true))"
	exit 0
}

find_chromium() {
	if [[ -x /usr/bin/chromium ]]; then echo /usr/bin/chromium; return 0; fi
	command -v chromium 2>/dev/null
}

skipped() { # why
	echo "==> Chromium not installed ($1): the browser tests of the dashboard will be skipped."
	echo "    Install it with 'sudo apt-get install chromium' (Debian/Ubuntu), or put a 'chromium' on PATH."
	exit 0
}

if path=$(find_chromium); then found "$path"; fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
		skipped "installing it needs root"
	fi
fi
command -v apt-get >/dev/null 2>&1 || skipped "no apt-get on this system"

echo "==> installing Chromium for the browser tests (apt-get install chromium)"
install() { DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null 2>&1; }
# Only refresh the package lists when the install fails: on most machines
# they are recent enough, and apt-get update is the slow part.
if ! install; then
	echo "    apt-get install failed; refreshing the package lists (apt-get update) and trying again"
	if ! { $sudo apt-get update -qq >/dev/null 2>&1 && install; }; then
		skipped "apt-get install chromium failed; run it by hand to see why"
	fi
fi
if path=$(find_chromium); then found "$path"; fi
skipped "apt-get installed chromium but no chromium is on PATH"
