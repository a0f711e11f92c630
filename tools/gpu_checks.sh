#!/usr/bin/env bash
# Every GPU check of the toolkit in one run of a few minutes (issue 15), for a machine with a CUDA GPU, PyTorch
# and nvcc (no TensorRT needed): the GPU tests, the unpooling kernel's bandwidth against a copy, plain PyTorch
# against `toolkit bench`, `toolkit infer` on a 360x480 clip against bench's frames figure, and the parity of the
# PyTorch fp16/bf16 runner against fp32; the AOTInductor fp16 package (issue 28): its build, load time, bench at
# batch 1 and 8 and with frames against the CUDA-graph fp16 path in the same run, and its parity on val. Results go to docs/BENCHMARKS.md ("GPU"), with the card's name.
#
#   tools/gpu_checks.sh [OUT_DIR] [CAMVID_DIR]     (defaults: gpu_out, .camvid-jpeg; parity skips without data)
#   GPU_CHECKS_SKIP="parity compile" tools/gpu_checks.sh ...   leaves out the named steps (the slow ones)
#
# The toolkit runs from this checkout (PYTHONPATH), so nothing needs installing beyond its dependencies.
# Each step has its own time limit and a failed step does not stop the others; the log says which failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-gpu_out}}
DATA=${2:-.camvid-jpeg}
mkdir -p "$OUT"
WORK=$(mktemp -d)
LOG="$OUT/gpu_checks.log"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-$PWD/.gpu_build/torch_extensions}
PY=${PYTHON:-python3}
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  case " ${GPU_CHECKS_SKIP:-} " in *" $name "*) echo; echo "=== $name: skipped (GPU_CHECKS_SKIP)"; return;; esac
  echo; echo "=== $name ($(date -u +%H:%M:%S), limit ${limit}s): $*"
  local t0=$SECONDS
  timeout "$limit" "$@"; local rc=$?
  echo "=== $name: exit $rc in $((SECONDS - t0)) s"
  [ $rc = 0 ] || FAILED="$FAILED $name"
}
FAILED=""
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name())'
  git log -1 --format='commit %h %s' 2>/dev/null || true
  step tests 240 "$PY" -m pytest -q -p no:cacheprovider tests/engines/test_unpool_kernel.py \
    tests/backend/test_torch_cuda.py "tests/backend/test_runner_contract.py::TestTorchCudaRunner"
  step kernel-bandwidth 90 "$PY" tools/unpool_bandwidth.py --json "$OUT/unpool_bandwidth.json"
  step torch-reference 120 "$PY" tools/torch_cuda_reference.py --json "$OUT/torch_reference.json"
  step bench-cli 90 "$PY" -m toolkit bench --device cuda -m enhanced-w64 -m enhanced-w64 --io frames -n 300 --warmup 20 \
    --rounds 3 --json "$OUT/bench_frames.json"
  step bench-cli-2-streams 90 "$PY" -m toolkit bench --device cuda -m enhanced-w64 -m enhanced-w64 --io frames -n 300 \
    --warmup 20 --rounds 3 --streams 2 --json "$OUT/bench_frames_2streams.json"
  step clip 60 "$PY" -c "from toolkit.video.sample import make_sample_clip as m; \
m('$WORK/clip.mp4', frames=1500, size=(360, 480), use_camvid=False, keep_frames=False)"
  step infer-no-output 90 "$PY" -m toolkit infer --device cuda --source "$WORK/clip.mp4" --no-progress --json "$OUT/infer_cuda.json"
  step infer-1-worker 90 "$PY" -m toolkit infer --device cuda --source "$WORK/clip.mp4" --workers 1 --no-progress \
    --json "$OUT/infer_cuda_1worker.json"
  step infer-mp4 90 "$PY" -m toolkit infer --device cuda --source "$WORK/clip.mp4" --output "$WORK/out.mp4" --no-progress \
    --json "$OUT/infer_cuda_mp4.json"
  PT2="$WORK/enhanced-w64.pt2"  # issue 28; bench's default --precision auto runs the checkpoint in fp16 on CUDA
  step aoti-build 600 "$PY" -m toolkit build-engine -m enhanced-w64 --backend aoti --precision fp16 --device cuda \
    -o "$PT2"
  step aoti-load 120 "$PY" -c "import json, sys, time, numpy as np; from toolkit.backend import make_runner; \
t0 = time.perf_counter(); r = make_runner(sys.argv[1], device='cuda').activate(); t1 = time.perf_counter(); \
r.infer({'input': np.zeros((1, 3, 360, 480), np.float32)}); t2 = time.perf_counter(); \
d = {'activate_s': t1 - t0, 'first_call_s': t2 - t1}; print(d); json.dump(d, open(sys.argv[2], 'w'))" \
    "$PT2" "$OUT/aoti_load.json"
  for n in 1 8; do
    step "aoti-bench-$n" 150 "$PY" -m toolkit bench --device cuda -m "$PT2" -m enhanced-w64 --input-shape "${n}x3x360x480" \
      -n 300 --warmup 20 --rounds 3 --compare --json "$OUT/bench_aoti_b$n.json"
  done
  step aoti-bench-frames 150 "$PY" -m toolkit bench --device cuda -m "$PT2" -m enhanced-w64 --io frames -n 300 \
    --warmup 20 --rounds 3 --compare --json "$OUT/bench_aoti_frames.json"
  step aoti-bench-no-graph 150 "$PY" -m toolkit bench --device cuda -m "$PT2" -m enhanced-w64 --no-cuda-graph -n 300 \
    --warmup 20 --rounds 3 --compare --json "$OUT/bench_aoti_no_graph.json"
  if [ -f "$DATA/classes.json" ]; then
    step aoti-parity 200 "$PY" -m toolkit parity --reference enhanced-w64 -c "$PT2" --device cuda --data "$DATA" \
      --json "$OUT/parity_aoti.json" --no-per-class
    step parity 200 "$PY" -m toolkit parity --reference enhanced-w64 -c enhanced-w64@fp16 -c enhanced-w64@bf16 --device cuda \
      --data "$DATA" --json "$OUT/parity_torch.json" --no-per-class
  else
    echo "no CamVid copy at $DATA: parity skipped (../shared/tools/camvid-jpeg.sh makes one)"
  fi
  step compile 200 "$PY" -m toolkit bench --device cuda -m enhanced-w64 -m enhanced-w64 --compile --io frames -n 300 --warmup 20 \
    --rounds 3 --json "$OUT/bench_compile.json"
  echo; echo "failed steps:${FAILED:- none}"
} 2>&1 | tee "$LOG"
rm -rf "$WORK"
