#!/usr/bin/env bash
# make demo: runs the daemon on configs/demo.yaml, replays the demo sensor
# scenarios into its embedded broker and prints the live event stream until
# Ctrl-C. Everything it starts is stopped on exit.
set -euo pipefail

cd "$(dirname "$0")/.."

CONFIG=${CONFIG:-configs/demo.yaml}
API=${API:-http://127.0.0.1:8080}
BROKER=${BROKER:-tcp://127.0.0.1:1883}
# Demo-only guard token from configs/demo.yaml; never use it on a real site.
TOKEN=${TOKEN:-demo-guard-token-0000}
DATA_DIR=tmp/demo # gateway.data_dir in configs/demo.yaml
LOG=tmp/demo-warden.log
FIXTURE_DIR=${FIXTURE_DIR:-testdata/scenarios/demo}

pids=()
cleanup() {
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	echo
	echo "demo stopped; daemon log: $LOG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 1883 8080; do
	if port_busy "$port"; then
		echo "port $port on 127.0.0.1 is already in use." >&2
		[ "$port" = 1883 ] && echo "A mosquitto service? Stop it with: systemctl stop mosquitto" >&2
		exit 1
	fi
done

shopt -s nullglob
fixtures=("$FIXTURE_DIR"/*.jsonl)
if [ ${#fixtures[@]} -eq 0 ]; then
	echo "no fixtures in $FIXTURE_DIR/*.jsonl" >&2
	exit 1
fi

# A fresh data dir each run, so the stream starts at seq 1.
rm -rf "$DATA_DIR"
mkdir -p "$DATA_DIR"

echo "== starting bin/warden run --config $CONFIG (log: $LOG)"
bin/warden run --config "$CONFIG" >"$LOG" 2>&1 &
pids+=($!)
warden_pid=$!

deadline=$((SECONDS + 60))
until curl -fsS -o /dev/null "$API/readyz" 2>/dev/null; do
	if ! kill -0 "$warden_pid" 2>/dev/null; then
		echo "warden exited before it was ready:" >&2
		tail -n 40 "$LOG" >&2
		exit 1
	fi
	if [ $SECONDS -ge $deadline ]; then
		echo "warden not ready after 60s:" >&2
		tail -n 40 "$LOG" >&2
		exit 1
	fi
	sleep 0.3
done
echo "== ready; streaming $API/api/v1/events/stream"

# Subscribe before replaying so every event shows as it happens;
# Last-Event-ID 0 also resumes anything committed before the stream opened.
curl -sS -N -H "Authorization: Bearer $TOKEN" -H "Last-Event-ID: 0" \
	"$API/api/v1/events/stream" &
pids+=($!)
stream_pid=$!

echo "== replaying ${fixtures[*]}"
bin/warden replay mqtt --broker "$BROKER" "${fixtures[@]}" >&2 &
pids+=($!)
if wait $!; then
	echo "== replay finished; alarms stay in the stream above. Ctrl-C to stop." >&2
else
	echo "== replay failed (see above); Ctrl-C to stop." >&2
fi

wait "$stream_pid" || true
