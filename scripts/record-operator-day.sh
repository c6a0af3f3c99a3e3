#!/usr/bin/env bash
# record-operator-day.sh: build medallion and record, as text, an operator's
# day on a fresh local lake: init, 2,000,000 generated meter readings, ingest,
# a long `medallion run` on a terminal (script(1)) with its status line, an
# afternoon delivery run with progress in the logs, then a refresh of a silver
# time range with its downstream tables, a replay of quarantined rows after a
# rule fix (then a refresh of silver that counts the replayed rows), and a
# column rename refused with its hint, then the hint taken. The recording goes to
# docs/operator-day.md: each command as `$ command`, then its output (stdout
# and stderr as they interleave), with the temp directory and log timestamps
# trimmed.
#
# A section whose command this build does not have (`medallion help` does not
# list it) is recorded as "(not available in this build)"; run the script
# again once it has. Data is generated with fixed seeds, so the rows and
# counts are the same on every recording; durations, rates, landing keys and
# checksums of the raw objects vary.
#
# usage: scripts/record-operator-day.sh [OUT]   (default docs/operator-day.md)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$repo/docs/operator-day.md}
case $out in /*) ;; *) out=$PWD/$out ;; esac

work=$(mktemp -d "${TMPDIR:-/tmp}/medallion-day.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/energy"

echo "building medallion..." >&2
(cd "$repo" && go build -o "$work/bin/medallion" ./cmd/medallion)

# The session needs no services: the starter's postgres: is
# ${DATABASE_URL:-}, so without this the run would mirror into whatever
# database the environment names.
unset DATABASE_URL MEDALLION_LAKE
export PATH="$work/bin:$PATH"
export TZ=UTC

doc=$work/operator-day.md
cd "$work/energy"

# trim makes output readable outside this machine: the temp directory
# becomes ~/energy-day, and the time stamp of log lines goes.
trim() {
	sed -e "s#$work/energy#~/energy-day#g" -e "s#$work#~#g" -e 's/^time=[^ ]* //'
}

# say writes markdown text.
say() { printf '%s\n' "$@" >>"$doc"; }

# rec runs a command line in the current directory and records it as
# `$ line`, then its output; a failing command's exit status follows.
rec() {
	local line=$1 status=0 output
	echo "\$ $line" >&2
	output=$(bash -c "$line" 2>&1) || status=$?
	{
		printf '$ %s\n' "$line"
		if [ -n "$output" ]; then printf '%s\n' "$output" | trim; fi
		if [ "$status" -ne 0 ]; then printf '[exit %d]\n' "$status"; fi
	} >>"$doc"
	return 0
}

# rec_tty runs a command line on a pseudo-terminal (script(1)) and records
# its status line as frames: each redraw ("\r\033[K" then the line) is one
# line of the recording, one frame per second of the run's elapsed time
# (the status line's last figure), between the lines the command printed.
rec_tty() {
	local line=$1 status=0 output
	echo "\$ $line (on a terminal)" >&2
	output=$(script -q -e -c "$line" /dev/null </dev/null 2>&1) || status=$?
	{
		printf '$ %s\n' "$line"
		printf '%s\n' "$output" | sed 's/\x1b\[K/\n/g' | tr -d '\r' | awk '
			$0 == "" { next }
			/^\[[0-9]+\/[0-9]+\] / { if ($NF == last) next; last = $NF; print "[status] " $0; next }
			{ print }' | trim
		if [ "$status" -ne 0 ]; then printf '[exit %d]\n' "$status"; fi
	} >>"$doc"
	return 0
}

# block starts and ends a console block.
begin() { say '' '```console'; }
end() { say '```' ''; }

# has reports whether this build's `medallion help` lists command $1.
# (The help text is read whole first: with pipefail, grep -q leaving early
# could fail the pipe.)
has() {
	local help
	help=$(medallion help 2>&1) || true
	grep -qE "^  $1 " <<<"$help"
}

unavailable() { say "(not available in this build: \`medallion help\` does not list \`$1\`)" ''; }

: >"$doc"
say '# An operator'"'"'s day, recorded' '' \
	'A terminal session recorded as text by `scripts/record-operator-day.sh`: each' \
	'command after `$ `, then what it printed (stdout and stderr as they came),' \
	'on a fresh local lake in a temp directory (shown as `~/energy-day`). Data is' \
	'generated with fixed seeds; durations, rates, landing keys and checksums' \
	'differ from one recording to the next. Rerun the script to record it again.'

say '' '## Morning: a new lake and a day of meter readings' ''
say 'Two million readings (152 MiB of NDJSON) land in raw exactly once by content.'
begin
rec 'medallion init'
rec 'medallion generate energy --rows 2000000 --seed 42 --out meters.ndjson'
rec 'medallion ingest meters meters.ndjson'
end

say '## A long run on a terminal, with progress' ''
say 'On a terminal, `run` keeps one status line on stderr, redrawn in place a few' \
	'times a second: jobs done of planned, then per running job its step, bytes' \
	'of raw objects (bronze) or input files (silver, gold) done of the total,' \
	'the rate, rows read, how long it has run and the estimate of the time left,' \
	'and the run'"'"'s elapsed time. Recorded here on a pseudo-terminal, one frame' \
	'a second, each shown as a line starting with `[status]`. Bronze reports after' \
	'each group of objects it types: one big object is typed by one DuckDB' \
	'statement, so its bytes go from 0 to done at once.'
begin
if command -v script >/dev/null 2>&1; then
	rec_tty 'medallion run'
else
	say '(script(1) is not installed: no terminal to record on)'
fi
end

say '## The afternoon delivery, from cron: progress in the logs' ''
say 'When stderr is not a terminal, `run` writes one info line per running job' \
	'every `MEDALLION_PROGRESS_EVERY` (5s by default; 2s here) with the same' \
	'figures.'
begin
rec 'medallion generate energy --rows 2000000 --seed 43 --start 2024-01-04 --out afternoon.ndjson'
rec 'medallion ingest meters afternoon.ndjson'
rec 'MEDALLION_PROGRESS_EVERY=2s medallion run --log-level info'
rec 'medallion tables'
end

say '## Recompute a time range of silver, and what reads it' ''
if has refresh; then
	say 'After a fix upstream, one day of `silver.meter_usage_1m` is recomputed in one' \
		'commit, and `--downstream` brings the gold tables (and mirrors) along.' \
		'Nothing was fixed here, so the day comes out as it was: its 11520 windows' \
		'replaced by the same 11520.'
	begin
	rec 'medallion refresh silver.meter_usage_1m --from 2024-01-02 --to 2024-01-03 --downstream'
	rec 'medallion history silver.meter_usage_1m'
	end
else
	unavailable refresh
fi

say '## Replay quarantined rows after a rule fix' ''
if has replay; then
	say 'A shop pipeline whose `device_type` rule forgot `smart_tv`: those rows go to' \
		'`bronze._quarantine`. Once the value is accepted, `replay` moves the rows' \
		'that now pass into bronze, exactly once. They are behind silver'"'"'s' \
		'watermark by now, so the next `run` counts them late (`silver._late`);' \
		'as the replay'"'"'s last line says, a refresh of the silver table counts them:' \
		'it rebuilds the table in one pass over bronze as it is now, and' \
		'`--downstream` brings gold along. (`rows_in_windows` stays below' \
		'`bronze_rows` by the rows of the windows still open: silver writes a' \
		'window once the watermark has passed it.)'
	mkdir -p "$work/shop"
	cd "$work/shop"
	begin
	rec 'medallion init --template ecommerce'
	rec "sed -i 's/accepted: \\[mobile, desktop, tablet, smart_tv\\]/accepted: [mobile, desktop, tablet]/' medallion.yaml && grep -n 'device_type:' medallion.yaml"
	rec 'medallion generate ecommerce --rows 200000 --seed 42 --out events.csv'
	rec 'medallion ingest events events.csv'
	rec 'medallion run'
	rec 'medallion query "SELECT column_name, count(*) AS n FROM bronze._quarantine GROUP BY ALL ORDER BY n DESC"'
	rec "sed -i 's/accepted: \\[mobile, desktop, tablet\\]/accepted: [mobile, desktop, tablet, smart_tv]/' medallion.yaml && grep -n 'device_type:' medallion.yaml"
	rec 'medallion replay bronze.events'
	rec 'medallion replay bronze.events'
	rec 'medallion run'
	rec 'medallion query "SELECT device_type, count(*) AS n FROM bronze.events GROUP BY ALL ORDER BY n DESC"'
	counts='SELECT (SELECT count(*) FROM bronze.events) AS bronze_rows, (SELECT sum(event_count) FROM silver.sales_1m) AS rows_in_windows, (SELECT count(*) FROM silver._late) AS late_rows'
	rec "medallion query \"$counts\""
	if has refresh; then
		rec 'medallion refresh silver.sales_1m --downstream'
		rec "medallion query \"$counts\""
	fi
	end
	cd "$work/energy"
else
	unavailable replay
fi

say '## A column rename is refused, with the ways forward' ''
say 'The meters now send `usage_kwh` instead of `energy_usage`, and the pipeline' \
	'file is edited to match. The run stops before writing anything and says' \
	'what changed and what to do.'
begin
rec "sed -i 's/energy_usage/usage_kwh/g' medallion.yaml && grep -n 'usage_kwh' medallion.yaml"
rec "medallion generate energy --rows 10000 --seed 44 --start 2024-01-08 --out day2.ndjson && sed -i 's/\"energy_usage\"/\"usage_kwh\"/' day2.ndjson && head -1 day2.ndjson"
rec 'medallion ingest meters day2.ndjson'
before=$(wc -l <"$doc")
rec 'medallion run'
end
# The schema-change check names renamed_from: in its hint; an older build
# either takes the run or fails later for another reason.
if ! tail -n +"$before" "$doc" | grep -q 'renamed_from'; then
	say "(not available in this build: the run did not refuse the rename with its hint)" ''
else
	say '### Taking the hint' ''
	say 'Keep the earlier values under the new name with `renamed_from:`; bronze' \
		'renames the column in one commit (`history` shows it). Silver'"'"'s' \
		'aggregates changed too, so it asks for a refresh, which rebuilds it from' \
		'bronze with the new definition and brings gold along.'
	begin
	rec "sed -i 's/usage_kwh: {type: double, min: 0, unit: kWh}/usage_kwh: {type: double, min: 0, unit: kWh, renamed_from: energy_usage}/' medallion.yaml && grep -n 'renamed_from' medallion.yaml"
	rec 'medallion run'
	rec 'medallion history bronze.meters'
	if has refresh; then
		rec 'medallion refresh silver.meter_usage_1m --downstream'
		rec 'medallion run'
	fi
	end
fi

mkdir -p "$(dirname "$out")"
cp "$doc" "$out"
echo "wrote $out" >&2
