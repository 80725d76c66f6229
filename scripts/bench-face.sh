#!/usr/bin/env bash
# CPU of a 720p entrance stream at detect.fps 5 with three faces in view,
# beside decode only, and the time per face.
#
#   scripts/bench-face.sh [RUNS] [SECONDS]       e.g. scripts/bench-face.sh 3 30
#
# Builds a 1280×720 25 fps H.264 clip: a moving testsrc2 background with
# three London smiling photos (three people in view, faces ≈150 px high).
# Each run times, alternately, `ffmpeg -i clip -f null -` (decode only, the
# baseline) and `warden analyze` of the same clip with the face detector
# (YuNet + the 112×112 embedder, 1 OpenCV thread), and reports CPU seconds
# per second of video (cores needed to keep up live), the ratio, and the
# detector's own time per face. Warden's start-up (loading the models, the
# recogniser's self-check) is timed on a 1 s cut and taken off, so the
# figure is what a running camera costs. Needs ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-3}
T=${2:-30}
BIN=${WARDEN:-bin/warden}
DATA=${WARDEN_DATA:-../shared/data}
for f in models/face_detection_yunet_2022mar.onnx models/face_embed_112_fr_feature.onnx faces/london/smiling_front/001_08.jpg; do
	[ -e "$DATA/$f" ] || { echo "bench-face: $DATA/$f missing" >&2; exit 2; }
done

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
s="$DATA/faces/london/smiling_front"
ffmpeg -v error -f lavfi -i "testsrc2=size=1280x720:rate=25" -i "$s/001_08.jpg" -i "$s/003_08.jpg" -i "$s/004_08.jpg" \
	-filter_complex "[1:v]scale=320:320[a];[2:v]scale=320:320[b];[3:v]scale=320:320[c];[0:v][a]overlay=80:200[x];[x][b]overlay=480:200[y];[y][c]overlay=880:200,format=yuv420p" \
	-t "$T" -c:v libx264 -preset veryfast -g 50 -bf 0 "$dir/gate.mp4"
# one second of it: what warden analyze costs to start (models, self-check)
ffmpeg -v error -i "$dir/gate.mp4" -t 1 -c copy "$dir/start.mp4"

cat >"$dir/w.yaml" <<YAML
gateway: {id: gw-bench, data_dir: "$dir/data"}
cameras:
  - id: gate
    url: rtsp://127.0.0.1:1/gate
    detect:
      fps: 5
      face:
        detector_model: "$DATA/models/face_detection_yunet_2022mar.onnx"
        recognizer_model: "$DATA/models/face_embed_112_fr_feature.onnx"
        recognizer_input: arcface
YAML

# cpu CMD…: user+sys CPU seconds of CMD and its children.
cpu() {
	/usr/bin/time -f "%U %S" -o "$dir/time" "$@" >/dev/null 2>"$dir/err" || { cat "$dir/err" >&2; exit 1; }
	awk '{printf "%.2f", $1 + $2}' "$dir/time"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); clip ${T} s 1280x720@25, 3 faces"
printf "%-4s %-24s %-36s %-7s %s\n" run "decode only: CPU, cores" "warden analyze: CPU − start, cores" ratio "detector per face"
for r in $(seq 1 "$RUNS"); do
	dec=$(cpu ffmpeg -v error -threads 1 -i "$dir/gate.mp4" -f null -)
	st=$(cpu "$BIN" analyze --config "$dir/w.yaml" --camera gate --no-gallery "$dir/start.mp4")
	war=$(cpu "$BIN" analyze --config "$dir/w.yaml" --camera gate --no-gallery "$dir/gate.mp4")
	face=$(grep -o '[0-9.]* ms per face' "$dir/err" || echo "? ms per face")
	awk -v r="$r" -v d="$dec" -v w="$war" -v s="$st" -v t="$T" -v f="$face" \
		'BEGIN { c = (w - s) * t / (t - 1); printf "%-4s %5.2f s = %5.3f         %5.2f − %4.2f s = %5.3f          %5.1f×  %s\n", r, d, d/t, w, s, c/t, c/d, f }'
done
grep -h "frames analysed" "$dir/err" | sed 's/^ */last run: /'
