#!/usr/bin/env bash
# Reproduce the model zoo (toolkit/assets/*.safetensors and zoo.json) with the project's own commands.
# Every step resumes (re-run the script after a kill); each stage can be skipped by its variable.
#   tools/make_zoo.sh [DATA] [RUNS]
#   TEACHER_DEVICE=cuda   train the w=64 teacher there (130 epochs: ~4 min on an H200; days on 2 CPU cores)
#   TEACHER=FILE          skip stage 1 and distil from this checkpoint (e.g. ../shared/models/enhanced_w64_camvid.safetensors)
#   STUDENT_DEVICE=cpu    where the students train (cuda: minutes; 2 CPU cores: about 1-2 h each)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/camvid}
RUNS=${2:-runs/zoo}
TK=.venv/bin/toolkit
PY=.venv/bin/python
TEACHER_DEVICE=${TEACHER_DEVICE:-cuda}
STUDENT_DEVICE=${STUDENT_DEVICE:-cpu}

# 1. The accuracy model: enhanced w=64 at 352x480 crops, 130 epochs, no per-epoch val (it is the zoo's GPU model).
if [ -z "${TEACHER:-}" ]; then
  $TK train --data "$DATA" --device "$TEACHER_DEVICE" --width 64 --crop 352x480 --epochs 130 --batch-size 8 \
    --workers 12 --val-split '' --resume --no-progress --out "$RUNS/enhanced_w64"
  TEACHER="$RUNS/enhanced_w64/last.safetensors"
fi
$PY tools/zoo_add.py "$TEACHER" --name enhanced-w64 --fp16 --default-on cuda --data "$DATA" \
  --summary "enhanced SegNet, w=64, 360x480: the accuracy model, for GPUs" \
  --trained "toolkit train --device cuda --width 64 --crop 352x480 --epochs 130 --batch-size 8 (tools/make_zoo.sh)"

# 2. The real-time CPU students, distilled from it (one shared logit cache), warm-started from the first
#    CPU model (enhanced-w16: 30 epochs at 180x240 without a teacher, docs/RESULTS.md).
COMMON=(--data "$DATA" --arch enhanced --loss bce --width 16 --batch-size 8 --lr 0.05 --warmup-epochs 0.5
        --init enhanced-w16 --teacher "$TEACHER" --teacher-cache "$RUNS/teacher_logits" --device "$STUDENT_DEVICE"
        --channels-last --resume --no-progress)
$TK train "${COMMON[@]}" --size 180x240 --crop 176x240 --epochs 20 --threads 1 --out "$RUNS/student_w16_180"
$TK train "${COMMON[@]}" --size 240x320 --crop 240x320 --epochs 14 --threads 1 --out "$RUNS/student_w16_240"

# 3. The shipped CPU model: the 180x240 student (the only configuration that met 25 FPS on our 2 cores).
$PY tools/zoo_add.py "$RUNS/student_w16_180/last.safetensors" --name enhanced-w16-kd --default-on cpu --data "$DATA" \
  --summary "enhanced SegNet, w=16, 180x240, distilled from enhanced-w64: the real-time CPU model" \
  --trained "toolkit train --size 180x240 --crop 176x240 --width 16 --epochs 20 --init enhanced-w16 --teacher (tools/make_zoo.sh)"

# 4. The speed frontier (untrained weights: speed does not depend on them) with the students' val mIoU.
$PY tools/frontier.py --out "$RUNS/frontier" --miou "w16 180x240 KD=$RUNS/student_w16_180/last.safetensors" \
  --miou "w16 240x320 KD=$RUNS/student_w16_240/last.safetensors"
