#!/usr/bin/env bash
# Train the zoo on one GPU in one call (issue 22): side by side on the one card,
#   w64_trainval  enhanced w=64, the long recipe, trained on train+val, fixed schedule, last epoch shipped
#   w64_train     its train-only twin (same flags, train only, validated on val each epoch: val still means something)
#   student       the CPU student, enhanced w=16 at 180x240, loss at the label's resolution, distilled from
#                 $TEACHER (default: the zoo's enhanced-w64; the new teacher is not ready until the end);
#                 STUDENT_ARCH=enhanced_s2 trains the stride-2 stem design instead (w=16, reads the 360x480
#                 frame itself: --size 360x480, crops 352x480, multiples of its output stride 16)
# then evaluates each on val (the train+val model's val score is a training score: it says so) and writes
# checkpoints, logs and timings under OUT. Budget: at most $BUDGET_S seconds of training (default 540 = 9 min);
# a run still going then is stopped, keeping its last finished epoch (checkpoints are written each epoch).
# NOT RUN ON A GPU YET: the epoch counts are estimates; resize them (EPOCHS_W64, EPOCHS_STUDENT) from the
# img/s that a first run's OUT/*/train_log.csv records (docs/RESULTS.md, "Waiting for a GPU").
#   tools/gpu_zoo.sh OUT DATA            (on the GPU machine)
#   tools/gpu_zoo.sh --dry-run OUT       (CPU, synthetic data, tiny sizes: checks the plumbing in seconds)
#   STUDENT_ARCH=enhanced_s2 tools/gpu_zoo.sh OUT DATA   (the student is the stride-2 stem design)
set -euo pipefail
cd "$(dirname "$0")/.."
DRY=0
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
OUT=${1:?usage: tools/gpu_zoo.sh [--dry-run] OUT [DATA]}
DATA=${2:-../shared/camvid}
PY=${PY:-python}
BUDGET_S=${BUDGET_S:-540}
EPOCHS_W64=${EPOCHS_W64:-200}
EPOCHS_STUDENT=${EPOCHS_STUDENT:-300}
TEACHER=${TEACHER-enhanced-w64}
STUDENT_ARCH=${STUDENT_ARCH:-enhanced}
case "$STUDENT_ARCH" in
  enhanced) STUDENT_GEOM=(--size 180x240 --crop 176x240 --label-res full) ;;  # a 2x resize; loss at label res
  enhanced_s2) STUDENT_GEOM=(--size 360x480 --crop 352x480) ;;  # the frame itself; crops multiples of 16
  *) echo "error: STUDENT_ARCH=$STUDENT_ARCH: expected enhanced or enhanced_s2" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
if [ "$DRY" = 1 ]; then
  DATA=synthetic; DEVICE=cpu; TEACHER=""; BUDGET_S=${BUDGET_S_DRY:-300}
  W64=(--width 4 --crop 32x48 --size 32x48 --batch-size 2 --epochs 1 --threads 1)
  STUDENT=(--arch "$STUDENT_ARCH" --width 4 --crop 32x48 --size 32x48 --batch-size 2 --epochs 1 --threads 1)
  SPLITS_TV=(--train-splits train --val-split '')  # synthetic data has one training split
else
  DEVICE=cuda
  # the long recipe (docs/MODEL.md, "The long recipe"): batch 32 at 4x the lr tuned for 8, scale 0.5-2,
  # strong jitter, ENet weights on B-CE's positive term, mask unpool + torch.compile, 8 loader workers
  W64=(--width 64 --crop 352x480 --batch-size 32 --lr 0.1 --lr-for-batch 8 --epochs "$EPOCHS_W64" --warmup-epochs 5
       --scale-range 0.5,2.0 --jitter 0.4 --class-weights enet --workers 8 --compile --log-every 100)
  STUDENT=(--arch "$STUDENT_ARCH" --width 16 "${STUDENT_GEOM[@]}" --batch-size 64 --lr 0.1 --lr-for-batch 8
           --epochs "$EPOCHS_STUDENT" --warmup-epochs 5 --scale-range 0.5,2.0 --jitter 0.4 --class-weights enet
           --workers 4 --compile --log-every 100)
  SPLITS_TV=(--train-splits train,val --val-split '')
fi
KD=()
if [ -n "$TEACHER" ]; then KD=(--teacher "$TEACHER" --teacher-cache "$OUT/teacher_logits"); fi

stamp() { date -u +%Y-%m-%dT%H:%M:%SZ; }
run() {  # NAME ARGS...: one training in the background, its log and wall time under OUT/NAME
  local name=$1; shift
  mkdir -p "$OUT/$name"
  ( start=$(date +%s)
    set +e
    timeout --signal=INT "$BUDGET_S" "$PY" -m toolkit train --data "$DATA" --device "$DEVICE" --no-progress \
      --resume -o "$OUT/$name" "$@" > "$OUT/$name/train.log" 2>&1
    rc=$?
    echo "$name rc=$rc train_s=$(( $(date +%s) - start ))" >> "$OUT/timings.txt" ) &
}
echo "start $(stamp) device=$DEVICE data=$DATA budget_s=$BUDGET_S student_arch=$STUDENT_ARCH" >> "$OUT/timings.txt"
"$PY" -m toolkit info > "$OUT/info.txt" 2>&1 || true
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
run w64_trainval "${W64[@]}" "${SPLITS_TV[@]}"
run w64_train "${W64[@]}"
run student "${STUDENT[@]}" "${KD[@]}"
wait
echo "trained $(stamp)" >> "$OUT/timings.txt"
status=0
for name in w64_trainval w64_train student; do
  ckpt="$OUT/$name/last.safetensors"
  if [ ! -f "$ckpt" ]; then echo "$name: no checkpoint (see $OUT/$name/train.log)" | tee -a "$OUT/timings.txt"
    status=1; continue; fi
  val=(--split val); [ "$DRY" = 1 ] && val=()
  start=$(date +%s)
  "$PY" -m toolkit eval -m "$ckpt" --data "$DATA" "${val[@]}" --device "$DEVICE" --json "$OUT/$name/val.json" \
    > "$OUT/$name/eval.log" 2>&1 || status=1
  echo "$name eval_s=$(( $(date +%s) - start ))" >> "$OUT/timings.txt"
done
echo "note: w64_trainval trained on val; its val score is a training score (compare w64_train)" >> "$OUT/timings.txt"
echo "end $(stamp)" >> "$OUT/timings.txt"
cat "$OUT/timings.txt"
exit $status
