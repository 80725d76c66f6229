#!/usr/bin/env bash
# How many cameras one box sustains with zero dropped analysis frames.
#
#   scripts/bench-cameras.sh N [SECONDS] [SIZE]      e.g. scripts/bench-cameras.sh 6 30 1280x720
#   FPS=1 GOP=25 scripts/bench-cameras.sh 8          analysis rate and key frame interval (5, 50)
#   CODEC=h265 scripts/bench-cameras.sh 8            cameras sending H.265 (default h264)
#   SUB=640x360 scripts/bench-cameras.sh 24          each camera also sends a sub-stream of
#                                                    that size, which detection reads (detect.url)
#
# Serves N copies of a SIZE@25fps H.264 test clip with `warden replay rtsp`,
# runs `warden run` with N cameras analysed at 5 fps by the motion detector,
# and after a 10 s warm-up reports, over SECONDS: frames analysed and
# dropped (from /metrics) and the CPU of the gateway plus its ffmpeg
# decoders, beside the CPU of the replay server (which stands in for the
# cameras and would not run on a real box).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-4}
T=${2:-30}
SIZE=${3:-1280x720}
FPS=${FPS:-5}
GOP=${GOP:-50}
CODEC=${CODEC:-h264}
SUB=${SUB:-}
BIN=${WARDEN:-bin/warden}
RTSP=127.0.0.1:${RTSP_PORT:-18554}
API=127.0.0.1:${API_PORT:-18080}
MQTT=127.0.0.1:${MQTT_PORT:-11883}

dir=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

case $CODEC in
h264) enc=(-c:v libx264 -preset veryfast -g "$GOP" -bf 0) ;;
h265) enc=(-c:v libx265 -preset veryfast -x265-params "keyint=$GOP:min-keyint=$GOP:bframes=0:log-level=error") ;;
*) echo "CODEC=$CODEC: want h264 or h265" >&2; exit 2 ;;
esac
ffmpeg -v error -f lavfi -i "testsrc2=size=$SIZE:rate=25" -t 20 "${enc[@]}" -pix_fmt yuv420p "$dir/clip.mp4"
# what the gateway decodes: the main stream, or the sub-stream when there is one
decoded=$dir/clip.mp4
if [ -n "$SUB" ]; then
	ffmpeg -v error -f lavfi -i "testsrc2=size=$SUB:rate=25" -t 20 "${enc[@]}" -pix_fmt yuv420p "$dir/sub.mp4"
	decoded=$dir/sub.mp4
fi

streams=()
cams=""
for i in $(seq 1 "$N"); do
	streams+=("cam$i=$dir/clip.mp4")
	if [ -n "$SUB" ]; then
		streams+=("cam$i-sub=$dir/sub.mp4")
		cams+="  - {id: cam$i, url: \"rtsp://$RTSP/cam$i\", detect: {url: \"rtsp://$RTSP/cam$i-sub\", fps: $FPS, motion: {}}}
"
	else
		cams+="  - {id: cam$i, url: \"rtsp://$RTSP/cam$i\", detect: {fps: $FPS, motion: {}}}
"
	fi
done
cat >"$dir/w.yaml" <<YAML
gateway: {id: gw-bench, data_dir: "$dir/data"}
log: {level: warn}
mqtt: {embedded: {listen: "$MQTT", allow_anonymous: true}}
api: {listen: "$API", metrics_public: true}
cameras:
$cams
YAML

"$BIN" replay rtsp --listen "$RTSP" "${streams[@]}" 2>"$dir/replay.log" &
replay=$!
pids+=("$replay")
# the replay prepares every clip before it listens (seconds for 48 streams)
for _ in $(seq 1 120); do
	(exec 3<>"/dev/tcp/${RTSP%:*}/${RTSP#*:}") 2>/dev/null && break
	sleep 0.5
done
"$BIN" run --config "$dir/w.yaml" 2>"$dir/warden.log" &
warden=$!
pids+=("$warden")

# CPU seconds (user+sys) of a process and its children still running.
cpu() {
	local total=0 p
	for p in $1 $(pgrep -P "$1" || true); do
		if [ -r "/proc/$p/stat" ]; then
			total=$(awk -v t="$total" '{print t + ($14 + $15) / 100}' "/proc/$p/stat")
		fi
	done
	echo "$total"
}
# metric NAME: the sum of its series in the scrape saved by scrape (one
# scrape per sample, so the counters agree with each other)
scrape() { curl -fsS "http://$API/metrics" >"$dir/metrics"; }
metric() { awk -v m="$1" '$1 ~ "^"m {s += $2} END {printf "%d", s}' "$dir/metrics"; }

# warm-up: every camera online, then 10 s more
online() { curl -fsS "http://$API/metrics" 2>/dev/null | awk '$1 ~ /^warden_camera_state\{.*state="online"/ && $2 == 1 {n++} END {print n + 0}'; }
for _ in $(seq 1 120); do
	[ "$(online)" -ge "$N" ] && break
	sleep 0.5
done
[ "$(online)" -ge "$N" ] || echo "warning: only $(online) of $N cameras online after the warm-up" >&2
sleep 10
scrape
a0=$(metric warden_camera_frames_analysed_total)
d0=$(metric warden_camera_frames_dropped_total)
dd0=$(metric 'warden_camera_frames_dropped_total.*stage="decoder"')
w0=$(cpu "$warden")
g0=$(awk '{print ($14 + $15) / 100}' "/proc/$warden/stat")
r0=$(cpu "$replay")
sleep "$T"
scrape
a1=$(metric warden_camera_frames_analysed_total)
d1=$(metric warden_camera_frames_dropped_total)
dd1=$(metric 'warden_camera_frames_dropped_total.*stage="decoder"')
w1=$(cpu "$warden")
g1=$(awk '{print ($14 + $15) / 100}' "/proc/$warden/stat")
r1=$(cpu "$replay")

# The baselines, in the same run once the gateway is stopped: decoding the
# clip the gateway decoded (the sub-stream's with SUB) once with ffmpeg on
# one thread, per second of video.
kill "$warden" "$replay" 2>/dev/null || true
wait "$warden" "$replay" 2>/dev/null || true
/usr/bin/time -f "%U %S" -o "$dir/dec.time" ffmpeg -v error -threads 1 -i "$decoded" -f null - 2>/dev/null
dec=$(awk '{print ($1 + $2) / 20}' "$dir/dec.time")
# The same load without Warden: N single-thread decoders at the cameras'
# pace (-re), side by side as Warden's are, each decoding T seconds.
# Their wall time says whether this machine can decode N such streams in
# real time at all, before any analysis.
p0=$(date +%s.%N)
for i in $(seq 1 "$N"); do
	/usr/bin/time -f "%U %S" -o "$dir/par$i.time" ffmpeg -v error -re -threads 1 -stream_loop -1 -i "$decoded" -t "$T" -f null - 2>/dev/null &
done
wait
pwall=$(awk -v a="$p0" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
par=$(cat "$dir"/par*.time | awk -v n="$N" -v t="$T" '{s += $1 + $2} END {print s / n / t}')

awk -v n="$N" -v t="$T" -v size="$SIZE" -v a=$((a1 - a0)) -v d=$((d1 - d0)) -v dd=$((dd1 - dd0)) -v w="$w0" -v w1="$w1" -v r="$r0" -v r1="$r1" -v dec="$dec" -v par="$par" -v pwall="$pwall" -v fps="$FPS" -v gop="$GOP" -v codec="$CODEC" -v substream="$SUB" -v g="$g0" -v g1="$g1" 'BEGIN {
	printf "cameras %d (%s %s@25, GOP %d, motion at %g fps%s) over %ds: analysed %d frames (%.1f/s, want %d/s), dropped %d (%d units before the decoder, %d frames before analysis)\n", n, codec, size, gop, fps, substream == "" ? "" : " on a " substream " sub-stream", t, a, a / t, n * fps, d, dd, d - dd
	printf "gateway+decoders: %.2f cores (%.3f per camera; the Go process %.3f, its ffmpeg decoders %.3f); replay server (the cameras): %.2f cores\n", (w1 - w) / t, (w1 - w) / t / n, (g1 - g) / t / n, ((w1 - w) - (g1 - g)) / t / n, (r1 - r) / t
	printf "decode only (ffmpeg -threads 1 -f null, same clip): %.3f core per camera; Warden / decode: %.2fx\n", dec, (w1 - w) / t / n / dec
	printf "decode only, %d decoders at 25 fps side by side (ffmpeg -re -threads 1 -f null): %.3f core per camera; Warden / that: %.2fx\n", n, par, (w1 - w) / t / n / par
	printf "those %d decoders alone took %.1f s for %d s of video (%s)\n", n, pwall, t, (pwall > t * 1.05 + 1) ? "they fell behind: this machine cannot decode that many in real time" : "kept pace"
}'
