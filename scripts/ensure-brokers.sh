#!/usr/bin/env bash
# Makes sure the message brokers the broker-source tests use are running:
# Mosquitto (MQTT) at 127.0.0.1:1883 and nats-server with JetStream at
# 127.0.0.1:4222 (MQTT_PORT and NATS_PORT change the ports). A broker
# already listening is used as it is. A missing one is installed (Debian packages mosquitto / nats-server as root or with sudo;
# nats-server from source with go install into .bin/ if it is not packaged)
# and started in the background, each step said out loud. If that cannot
# work, it fails with one line saying what to do. Kafka needs nothing: its
# tests use franz-go's in-process kfake cluster.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$root/.bin
GO=${GO:-go}
NATS_MODULE=github.com/nats-io/nats-server/v2@latest
MQTT_PORT=${MQTT_PORT:-1883} # the tests use the defaults
NATS_PORT=${NATS_PORT:-4222}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port name
	for _ in $(seq 50); do
		listening "$1" && return 0
		sleep 0.2
	done
	echo "$2 was started but does not answer on 127.0.0.1:$1 within 10s (see its log above)" >&2
	exit 1
}

sudo=""
root_cmd() { # how to run apt-get, or fail with one line
	if [[ $(id -u) -eq 0 ]]; then sudo=""; return 0; fi
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; return 0; fi
	return 1
}

apt_install() { # package
	command -v apt-get >/dev/null 2>&1 || return 1
	root_cmd || return 1
	echo "    apt-get install -y $1"
	$sudo apt-get install -y -qq "$1" >/dev/null 2>&1 || { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq "$1" >/dev/null 2>&1; }
}

# --- Mosquitto -------------------------------------------------------------
if listening "$MQTT_PORT"; then
	echo "==> MQTT broker answers at 127.0.0.1:$MQTT_PORT"
else
	mosq=$(command -v mosquitto || true)
	[[ -z $mosq && -x /usr/sbin/mosquitto ]] && mosq=/usr/sbin/mosquitto
	if [[ -z $mosq ]]; then
		echo "==> installing Mosquitto (Debian package mosquitto)"
		if ! apt_install mosquitto; then
			echo "Mosquitto is not running at 127.0.0.1:$MQTT_PORT and installing it needs apt-get as root: run 'sudo apt-get install mosquitto' (or start any MQTT broker there)" >&2
			exit 1
		fi
		mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
	fi
	conf=$bin/mosquitto-$MQTT_PORT.conf
	mkdir -p "$bin/mosquitto-data"
	cat >"$conf" <<CONF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $bin/mosquitto-data/
pid_file $bin/mosquitto-$MQTT_PORT.pid
user $(id -un)
CONF
	echo "==> starting Mosquitto on 127.0.0.1:$MQTT_PORT in the background ($mosq -d -c $conf)"
	"$mosq" -d -c "$conf"
	wait_port "$MQTT_PORT" Mosquitto
fi

# --- NATS with JetStream ---------------------------------------------------
if listening "$NATS_PORT"; then
	echo "==> NATS answers at 127.0.0.1:$NATS_PORT (the tests fail clearly if JetStream is off: start it with -js)"
else
	nats=$(command -v nats-server || true)
	[[ -z $nats && -x $bin/nats-server ]] && nats=$bin/nats-server
	if [[ -z $nats ]]; then
		echo "==> installing nats-server"
		if apt_install nats-server; then
			nats=$(command -v nats-server || echo /usr/sbin/nats-server)
		else
			echo "    not packaged here (or no root): GOBIN=$bin $GO install $NATS_MODULE"
			mkdir -p "$bin"
			if ! GOBIN=$bin $GO install "$NATS_MODULE"; then
				echo "nats-server is not running at 127.0.0.1:$NATS_PORT and could not be installed: run 'go install $NATS_MODULE' or 'apt-get install nats-server'" >&2
				exit 1
			fi
			nats=$bin/nats-server
		fi
	fi
	mkdir -p "$bin/nats-data-$NATS_PORT"
	log=$bin/nats-server-$NATS_PORT.log
	echo "==> starting nats-server with JetStream on 127.0.0.1:$NATS_PORT in the background (data in $bin/nats-data-$NATS_PORT, log in $log)"
	nohup "$nats" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$bin/nats-data-$NATS_PORT" >"$log" 2>&1 &
	echo $! >"$bin/nats-server-$NATS_PORT.pid"
	disown || true
	wait_port "$NATS_PORT" nats-server
fi
