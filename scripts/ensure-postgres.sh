#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers at $DATABASE_URL for the integration
# tests. If none does, it starts an installed cluster, or installs one from
# Debian's packages (as root, or with sudo), or fails with one line saying how
# to get one. It never lets the PostgreSQL tests be skipped silently.
set -euo pipefail

url=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}
# host and port from postgres://user@host:port/db (defaults 127.0.0.1:5432)
hostport=${url#*://}; hostport=${hostport#*@}; hostport=${hostport%%/*}; hostport=${hostport%%\?*}
host=${hostport%%:*}; port=5432
[[ $hostport == *:* ]] && port=${hostport##*:}
[[ -z $host ]] && host=127.0.0.1
dbname=${url##*/}; dbname=${dbname%%\?*}; [[ -z $dbname || $dbname == "$url" ]] && dbname=test

reachable() { (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; }

can_login() {
	command -v psql >/dev/null 2>&1 || return 0 # no client to check with; the tests will say
	psql "$url" -Atqc 'select 1' >/dev/null 2>&1
}

if reachable && can_login; then
	echo "==> PostgreSQL answers at $host:$port (database $dbname)"
	exit 0
fi

local_host() { [[ $host == 127.0.0.1 || $host == localhost || $host == ::1 ]]; }
if ! local_host; then
	echo "PostgreSQL is not reachable at $url: start it, or set DATABASE_URL to a server the tests may use" >&2
	exit 1
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else
		echo "PostgreSQL is not reachable at $url and installing it needs root: run 'sudo apt-get install postgresql' or set DATABASE_URL" >&2
		exit 1
	fi
fi

as_postgres() {
	if [[ -z $sudo ]]; then runuser -u postgres -- "$@"; else sudo -n -u postgres "$@"; fi
}

if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "PostgreSQL is not reachable at $url and this is not a Debian-like system: install PostgreSQL and set DATABASE_URL" >&2
		exit 1
	fi
	echo "==> PostgreSQL not found: installing it from Debian's packages (apt-get install postgresql)"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
fi

ver=$(ls /etc/postgresql | sort -V | tail -n 1)
hba=/etc/postgresql/$ver/main/pg_hba.conf
if ! $sudo grep -q '^# medallion test access' "$hba"; then
	echo "==> allowing passwordless local TCP logins for the tests (trust for 127.0.0.1 and ::1 in $hba)"
	tmp=$(mktemp)
	{ echo '# medallion test access: trust local TCP connections (a test machine only)'
	  echo 'host all all 127.0.0.1/32 trust'
	  echo 'host all all ::1/128 trust'
	  $sudo cat "$hba"; } >"$tmp"
	$sudo cp "$tmp" "$hba"; rm -f "$tmp"
fi
if [[ $port != 5432 ]]; then
	$sudo sed -i "s/^#\?port = .*/port = $port/" "/etc/postgresql/$ver/main/postgresql.conf"
fi

echo "==> starting PostgreSQL $ver (cluster main on port $port)"
$sudo pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || $sudo pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
for _ in $(seq 1 30); do reachable && break; sleep 1; done

if ! as_postgres psql -Atqc "select 1 from pg_database where datname='$dbname'" 2>/dev/null | grep -q 1; then
	echo "==> creating database $dbname"
	as_postgres createdb "$dbname"
fi

if reachable && can_login; then
	echo "==> PostgreSQL answers at $host:$port (database $dbname)"
	exit 0
fi
echo "PostgreSQL was started but does not accept $url: check $hba or set DATABASE_URL" >&2
exit 1
