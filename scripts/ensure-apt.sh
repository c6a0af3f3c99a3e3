#!/usr/bin/env bash
# Usage: ensure-apt.sh COMMAND PACKAGE WHAT
#
# Makes sure COMMAND is installed for the tests (WHAT says which ones). One
# already on PATH is used as it is. A missing one is installed from Debian's
# package PACKAGE as root (or with sudo), said out loud. When that cannot
# work, it says how to install it and exits 1: `make test` fails rather
# than skip the tests that need it.
set -uo pipefail

cmd=$1 pkg=$2 what=$3

found() {
	echo "==> $cmd for $what: $(command -v "$cmd") ($("$cmd" --version 2>/dev/null | head -n 1 || true))"
	exit 0
}

missing() { # why
	echo "==> ERROR: $cmd is not installed and could not be installed ($1)." >&2
	echo "    $what need it. Install it with 'sudo apt-get install $pkg' (Debian/Ubuntu)," >&2
	echo "    or put a '$cmd' on PATH, then run make test again." >&2
	exit 1
}

if command -v "$cmd" >/dev/null 2>&1; then found; fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
		missing "installing it needs root"
	fi
fi
command -v apt-get >/dev/null 2>&1 || missing "no apt-get on this system"

echo "==> installing $pkg for $what (apt-get install $pkg)"
install() { DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$pkg" >/dev/null 2>&1; }
# Only refresh the package lists when the install fails: on most machines
# they are recent enough, and apt-get update is the slow part.
if ! install; then
	echo "    apt-get install failed; refreshing the package lists (apt-get update) and trying again"
	if ! { $sudo apt-get update -qq >/dev/null 2>&1 && install; }; then
		missing "apt-get install $pkg failed; run it by hand to see why"
	fi
fi
if command -v "$cmd" >/dev/null 2>&1; then found; fi
missing "apt-get installed $pkg but no $cmd is on PATH"
