#!/usr/bin/env bash
# make demo: a small site on loopback (docs/demo.md).
#
#  1. writes the effective config $DEMO_DIR/warden.yaml: configs/demo.yaml
#     plus the camera sections whose inputs exist here (ffmpeg, ../shared/data);
#  2. enrols sample faces (before the daemon: enrol needs the data dir);
#  3. serves the sample clips with `warden replay rtsp`;
#  4. runs the daemon, waits for /readyz and for the cameras to be online;
#  5. prints the console URL and token, replays the device scenario into the
#     embedded broker and streams the events (SSE) until Ctrl-C.
# Everything it starts is stopped on exit.
#
# Environment knobs (defaults in brackets):
#   DEMO_DIR [tmp/demo]          config, data, logs, clips and the face key
#   API_PORT [8080] MQTT_PORT [1883] RTSP_PORT [8554]   on 127.0.0.1
#   SHARED_DATA [../shared/data] sample faces, clips and the test face model
#   WARDEN [bin/warden]          the binary to run
#   DEMO_DURATION [0]            seconds to keep running after the replay; 0 = until Ctrl-C
#   DEMO_STREAM [1]              print the live SSE stream
#   DEMO_OPEN [1]                open the console with xdg-open when a display is there
#   DEMO_CAMERAS [1]             0 = devices only
set -euo pipefail

cd "$(dirname "$0")/.."

CONFIG=${CONFIG:-configs/demo.yaml}
DEMO_DIR=${DEMO_DIR:-tmp/demo}
API_PORT=${API_PORT:-8080}
MQTT_PORT=${MQTT_PORT:-1883}
RTSP_PORT=${RTSP_PORT:-8554}
SHARED_DATA=${SHARED_DATA:-../shared/data}
WARDEN=${WARDEN:-bin/warden}
DEMO_DURATION=${DEMO_DURATION:-0}
DEMO_STREAM=${DEMO_STREAM:-1}
DEMO_OPEN=${DEMO_OPEN:-1}
DEMO_CAMERAS=${DEMO_CAMERAS:-1}
FIXTURE_DIR=${FIXTURE_DIR:-testdata/scenarios/demo}
# Demo-only guard token from configs/demo.yaml; never use it on a real site.
TOKEN=${TOKEN:-demo-guard-token-0000}
ADMIN_TOKEN=${ADMIN_TOKEN:-demo-admin-token-0000}

API=http://127.0.0.1:$API_PORT
BROKER=tcp://127.0.0.1:$MQTT_PORT
RTSP=127.0.0.1:$RTSP_PORT
DATA_DIR=$DEMO_DIR/data
EFFECTIVE=$DEMO_DIR/warden.yaml
LOG=$DEMO_DIR/warden.log
RTSP_LOG=$DEMO_DIR/replay-rtsp.log
FACE_KEY=$DEMO_DIR/face.key

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

pids=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	# The daemon first, so it records the cameras going away and closes
	# its store; then the rest. Anything still there after 20 s is killed.
	local pid
	for pid in ${warden_pid:-} "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	local deadline=$((SECONDS + 20))
	for pid in "${pids[@]}"; do
		while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	echo >&2
	say "demo stopped; logs: $LOG${rtsp_pid:+, $RTSP_LOG}"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v curl >/dev/null || die "curl is required (apt-get install curl)"
[ -x "$WARDEN" ] || die "$WARDEN not found: run make build (or make demo)"

shopt -s nullglob
fixtures=("$FIXTURE_DIR"/*.jsonl)
[ ${#fixtures[@]} -gt 0 ] || die "no fixtures in $FIXTURE_DIR/*.jsonl"

# ---- which cameras can run here -------------------------------------------
have_ffmpeg=0
command -v ffmpeg >/dev/null && have_ffmpeg=1
face_on=0 throw_src=""
if [ "$DEMO_CAMERAS" = 0 ]; then
	say "cameras off (DEMO_CAMERAS=0)"
elif [ $have_ffmpeg = 0 ]; then
	say "no ffmpeg: cameras skipped (apt-get install ffmpeg, or make deps); devices only"
else
	face_clip=$SHARED_DATA/video/face-demographics-walking-and-pause.gif
	face_model=$SHARED_DATA/models/face_embed_112_fr_feature.onnx
	frames=$SHARED_DATA/faces/intel-frames
	if [ -f "$face_clip" ] && [ -f "$face_model" ] && [ -f "$frames/trio_10.jpg" ]; then
		face_on=1
	else
		say "faces skipped: $SHARED_DATA (sample faces, walking clip, test face model) is not here"
	fi
	if [ -f "$SHARED_DATA/throw/building_orange_fall.avi" ]; then
		throw_src=orange
	else
		throw_src=generated
	fi
fi
cams=$(( face_on + (${#throw_src} > 0 ? 1 : 0) ))

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ports=("$API_PORT" "$MQTT_PORT")
[ "$cams" -gt 0 ] && ports+=("$RTSP_PORT")
for port in "${ports[@]}"; do
	if port_busy "$port"; then
		echo "port $port on 127.0.0.1 is already in use." >&2
		[ "$port" = 1883 ] && echo "A mosquitto service? Stop it with: systemctl stop mosquitto" >&2
		[ "$port" = "$API_PORT" ] && echo "Another warden or demo? Or pick another: API_PORT=8081 make demo" >&2
		exit 1
	fi
done

# A fresh data dir each run, so the stream starts at seq 1. The face key
# and prepared clips are kept.
mkdir -p "$DEMO_DIR"
rm -rf "$DATA_DIR" "$DEMO_DIR/throwsim"
mkdir -p "$DATA_DIR"

# ---- clips -----------------------------------------------------------------
streams=()
if [ "$throw_src" = orange ]; then
	# The semi-synthetic orange drop (4.4 s) after 6 s of its still first
	# frame: one throw every 10.4 s of the loop. Calibration: docs/throw.md.
	facade_clip=$DEMO_DIR/facade-orange.mp4
	ffmpeg -nostdin -v error -y -i "$SHARED_DATA/throw/building_orange_fall.avi" \
		-vf tpad=start_mode=clone:start_duration=6 -c:v libx264 -preset veryfast -crf 20 \
		-pix_fmt yuv420p -bf 0 -g 25 "$facade_clip" ||
		{ say "could not prepare the facade clip; throw camera skipped"; throw_src=""; }
	facade="{top_y: 27, bottom_y: 531, left_x: 150, right_x: 868, floors: 7}"
elif [ "$throw_src" = generated ]; then
	# No shared data: draw a facade clip with one throw (docs/throw.md,
	# "Scene generator"); its calibration comes with the ground truth.
	say "generating a throw clip with testdata/gen/throwsim (shared data absent)"
	if command -v go >/dev/null &&
		go run ./testdata/gen/throwsim -out "$DEMO_DIR/throwsim" -seed 11 -n 1 -neg 0 \
			-w 960 -h 540 -seconds 10 -size 8-12 -noise 1-2 -crf 23-23 -floors 8-10 >&2 &&
		# Re-encoded without B-frames and with a key frame a second, like a
		# camera: the live pipeline joins and clips at key frames.
		ffmpeg -nostdin -v error -y -i "$DEMO_DIR"/throwsim/*.mp4 -c:v libx264 -preset veryfast -crf 18 \
			-pix_fmt yuv420p -bf 0 -g 25 "$DEMO_DIR/facade-generated.mp4"; then
		facade_clip=$DEMO_DIR/facade-generated.mp4
		truth=("$DEMO_DIR"/throwsim/*.json)
		field() { tr -d ' \n' <"${truth[0]}" | grep -o "\"$1\":[0-9]*" | head -n1 | cut -d: -f2; }
		facade="{top_y: $(field TopY), bottom_y: $(field BottomY), left_x: $(field LeftX), right_x: $(field RightX), floors: $(field Floors), lowest_floor: $(field LowestFloor)}"
	else
		say "could not generate a throw clip; throw camera skipped"
		throw_src=""
	fi
fi
[ -n "$throw_src" ] && streams+=("facade-3=$facade_clip")
if [ $face_on = 1 ]; then
	# The GIF at half speed (people stay in view longer) as good-quality
	# H.264, so replay rtsp copies it instead of transcoding it blurrier.
	ffmpeg -nostdin -v error -y -i "$face_clip" -vf "setpts=2.0*PTS" -r 12 -c:v libx264 -preset veryfast \
		-crf 16 -pix_fmt yuv420p -bf 0 -g 12 "$DEMO_DIR/entrance-walking.mp4" ||
		{ say "could not prepare the entrance clip; faces skipped"; face_on=0; }
fi
[ $face_on = 1 ] && streams+=("entrance=$DEMO_DIR/entrance-walking.mp4")
cams=${#streams[@]}

# ---- effective config ------------------------------------------------------
# configs/demo.yaml with this run's ports and data dir, then the cameras.
sed -e "s|^\(  data_dir:\) [^ ]*|\1 \"$DATA_DIR\"|" \
	-e "s|listen: \"127.0.0.1:1883\"|listen: \"127.0.0.1:$MQTT_PORT\"|" \
	-e "s|listen: \"127.0.0.1:8080\"|listen: \"127.0.0.1:$API_PORT\"|" \
	"$CONFIG" >"$EFFECTIVE"
if [ "$cams" -gt 0 ]; then
	{
		echo
		echo "# Added by scripts/demo.sh: cameras fed by warden replay rtsp on $RTSP."
		echo "cameras:"
	} >>"$EFFECTIVE"
fi
if [ -n "$throw_src" ]; then
	cat >>"$EFFECTIVE" <<EOF
  # Facade of building 3: an object falls from the top floor (throw.detected,
  # with its trajectory image and a clip).
  - id: facade-3
    display_name: "3 号楼南立面"
    url: "rtsp://$RTSP/facade-3"
    location: {building: "3", zone: "facade-south"}
    record: {pre_seconds: 3, post_seconds: 3}
    detect:
      fps: 25
      throw:
        facade: $facade
EOF
fi
if [ $face_on = 1 ]; then
	cat >>"$EFFECTIVE" <<EOF
  # Entrance: three people walk up to the camera; one is a resident, one is
  # on the watch list, one is unknown (face.recognized/watchlist/unknown).
  - id: entrance
    display_name: "正门人脸"
    url: "rtsp://$RTSP/entrance"
    location: {zone: "main-entrance"}
    detect:
      fps: 5
      face:
        detector_model: models/face_detection_yunet_2022mar.onnx
        # Test embedder from the shared data (docs/face.md): demo only.
        recognizer_model: "$face_model"
        recognizer_input: arcface
        key_file: "$FACE_KEY"
        min_face_px: 40
EOF
fi
"$WARDEN" check-config --config "$EFFECTIVE" >&2 || die "the effective config $EFFECTIVE is invalid (see above)"

# ---- faces: enrol before the daemon holds the data dir --------------------
if [ $face_on = 1 ]; then
	if [ ! -s "$FACE_KEY" ]; then
		(umask 077 && head -c 32 /dev/urandom >"$FACE_KEY")
	fi
	# The woman on the left of the clip, from stills of another Intel clip.
	"$WARDEN" enroll --config "$EFFECTIVE" --person demo-resident-a --name "Resident A (sample)" \
		--group resident "$frames"/f_{7,11,15,19,22}.jpg >&2
	# A man who is not in the clip: a gallery entry that never matches.
	"$WARDEN" enroll --config "$EFFECTIVE" --person demo-resident-b --name "Resident B (sample)" \
		--group resident "$frames"/m_*.jpg >&2
	# The man in the middle, cropped from one frame of the clip, stands in
	# for a watch-list photo.
	ffmpeg -nostdin -v error -y -i "$frames/trio_10.jpg" -vf crop=130:150:160:40 "$DEMO_DIR/watchlist-w.jpg"
	"$WARDEN" enroll --config "$EFFECTIVE" --person demo-watch-w --name "Watch-list W (sample)" \
		--group watchlist "$DEMO_DIR/watchlist-w.jpg" >&2
fi

# ---- replay rtsp -----------------------------------------------------------
if [ "$cams" -gt 0 ]; then
	say "serving ${streams[*]} on rtsp://$RTSP/ (log: $RTSP_LOG)"
	"$WARDEN" replay rtsp --listen "$RTSP" "${streams[@]}" >"$RTSP_LOG" 2>&1 &
	rtsp_pid=$!
	pids+=("$rtsp_pid")
	deadline=$((SECONDS + 60))
	until port_busy "$RTSP_PORT"; do
		kill -0 "$rtsp_pid" 2>/dev/null || { tail -n 20 "$RTSP_LOG" >&2; die "warden replay rtsp exited"; }
		[ $SECONDS -lt $deadline ] || { tail -n 20 "$RTSP_LOG" >&2; die "warden replay rtsp not listening after 60s"; }
		sleep 0.3
	done
fi

# ---- the daemon ------------------------------------------------------------
say "starting $WARDEN run --config $EFFECTIVE (log: $LOG)"
"$WARDEN" run --config "$EFFECTIVE" >"$LOG" 2>&1 &
warden_pid=$!
pids+=("$warden_pid")

warden_alive() {
	kill -0 "$warden_pid" 2>/dev/null && return 0
	echo "warden exited:" >&2
	tail -n 40 "$LOG" >&2
	exit 1
}
deadline=$((SECONDS + 60))
until curl -fsS -o /dev/null "$API/readyz" 2>/dev/null; do
	warden_alive
	[ $SECONDS -lt $deadline ] || { tail -n 40 "$LOG" >&2; die "warden not ready after 60s"; }
	sleep 0.3
done
if [ "$cams" -gt 0 ]; then
	say "ready; waiting for $cams camera(s) to come online"
	deadline=$((SECONDS + 45))
	while :; do
		online=$(curl -fsS -H "Authorization: Bearer $TOKEN" "$API/api/v1/cameras" 2>/dev/null |
			grep -o '"online":true' | wc -l) || online=0
		[ "$online" -ge "$cams" ] && break
		warden_alive
		if [ $SECONDS -ge $deadline ]; then
			say "only $online of $cams camera(s) online after 45s; going on (see $LOG)"
			break
		fi
		sleep 0.5
	done
fi

cat >&2 <<EOF

  ┌──────────────────────────────────────────────────────────────────┐
    Guard console:  $API/
    Log in with "令牌 / Token":  $TOKEN   (guard)
                                  $ADMIN_TOKEN   (admin)
    API example:    curl -H 'Authorization: Bearer $TOKEN' $API/api/v1/alarms
    Demo-only tokens: never use them on a real site.  Ctrl-C stops the demo.
  └──────────────────────────────────────────────────────────────────┘

EOF
if [ "$DEMO_OPEN" != 0 ] && { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; } && command -v xdg-open >/dev/null; then
	xdg-open "$API/" >/dev/null 2>&1 </dev/null &
	disown || true
fi

if [ "$DEMO_STREAM" != 0 ]; then
	say "streaming $API/api/v1/events/stream"
	# Last-Event-ID 0 also resumes anything committed before the stream opened.
	curl -sS -N -H "Authorization: Bearer $TOKEN" -H "Last-Event-ID: 0" \
		"$API/api/v1/events/stream" &
	pids+=($!)
fi

say "replaying ${fixtures[*]} (gas leak, valve closing, SOS, unknown plate, fence)"
# In the background and waited for, so a TERM to this script stops it too.
"$WARDEN" replay mqtt --broker "$BROKER" "${fixtures[@]}" >&2 &
pids+=($!)
if wait $!; then
	say "replay finished; again: $WARDEN replay mqtt --broker $BROKER ${fixtures[*]}"
else
	say "replay failed (see above)"
fi

if [ "$DEMO_DURATION" -gt 0 ]; then
	say "stopping in ${DEMO_DURATION}s (DEMO_DURATION)"
	end=$((SECONDS + DEMO_DURATION))
	while [ $SECONDS -lt $end ]; do warden_alive; sleep 0.5; done
	exit 0
fi
say "running; Ctrl-C to stop"
while :; do warden_alive; sleep 0.5; done
