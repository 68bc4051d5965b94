#!/usr/bin/env bash
# dlfound's GPU path, measured in one call of the device machine (see docs/results.md, "Checking the GPU path").
#
#   scripts/gpu_check.sh [STEP...]            on the GPU machine, from the repository root; OUT must be set
#   scripts/gpu_check.sh --dry-run [STEP...]  the same steps at toy size on the CPU (also: GPU_CHECK_CPU=1)
#   scripts/gpu_check.sh --prepare [DATA...]  here, first: wheels and data sets into .device/ (carry it)
#
# STEPs, in this order (default: all): install env tests families resnet18 sweep loop paper. Each runs under
# its own `timeout`, a failing one does not stop the rest, and everything ends by GPU_CHECK_DEADLINE_S seconds
# (default 450) after the start: a step that would start with too little time left is skipped, and `paper`
# gets whatever is left. Steps that need a data set absent from .device/data say so and skip it, so that
# CIFAR-10 (which travels alone) can have its own call. What comes back, in $OUT: summary.md (read this
# first), summary.json (every figure), log.txt (all output), and degradation.png/.md when the figure ran.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --prepare ]; then
  # Here, before a device call: .device/ gets the wheels (../shared/gpu/prepare.sh's, and the joblib launcher
  # that hydra/launcher=gpus builds on) and the named data sets, after the ones of an earlier call are removed.
  shift
  ../shared/gpu/prepare.sh wheels || exit 1
  python3 -m pip download -q --no-deps --only-binary=:all: -d .device/whl "hydra-joblib-launcher==1.2.0" || exit 1
  rm -rf .device/data
  [ $# -gt 0 ] && { ../shared/gpu/prepare.sh data "$@" || exit 1; }
  du -sh .device; exit 0
fi
DRY=${GPU_CHECK_CPU:-0}
STEPS=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    install|env|tests|families|resnet18|sweep|loop|paper) STEPS+=("$arg") ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
  esac
done
[ ${#STEPS[@]} -eq 0 ] && STEPS=(install env tests families resnet18 sweep loop paper)
wanted() { [[ " ${STEPS[*]} " == *" $1 "* ]]; }

if [ "$DRY" = 1 ]; then
  export OUT=${OUT:-/tmp/gpu_out}
  # The data sets as links, CIFAR-10 cut to 600 + 100 images a class, so that decoding it stays short on a CPU.
  full=${DLFOUND_DATA:-/work/shared/data} toy=/tmp/gpu_check_data
  if [ ! -d "$toy/cifar10-jpeg" ]; then
    mkdir -p "$toy"
    for d in MNIST restoration text; do ln -sfn "$full/$d" "$toy/$d"; done
    for split in train:600 test:100; do
      for class in "$full/cifar10-jpeg/${split%:*}"/*/; do
        dest="$toy/cifar10-jpeg/${split%:*}/$(basename "$class")"; mkdir -p "$dest"
        find "$class" -name '*.jpg' | sort | head -n "${split#*:}" | xargs -I{} ln -s {} "$dest/"
      done
    done
  fi
  export DLFOUND_DATA=$toy
  export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH} OMP_NUM_THREADS=1
  export CUDA_VISIBLE_DEVICES=0  # lets hydra/launcher=gpus hand out "GPU 0" on a machine that has none
  PY=${PYTHON:-python3}
  NICE="nice -n 10"
  CPU=--cpu
  PRECISIONS="32-true bf16-mixed"  # Lightning refuses 16-mixed on the CPU
  JOBS=2
  DEADLINE_S=${GPU_CHECK_DEADLINE_S:-2400}
  SCALE=4  # time caps: two shared cores are many times slower than the GPU machine
  LOOP_ARGS=(--device cpu --precision bf16-mixed --epochs 1 --limit-batches 4 --threads 1
             --overrides data.batch_size=16 data.eval_batch_size=16)
  STEPS=("${STEPS[@]/install/}")
else
  : "${OUT:?set OUT, the folder whose files come back}"
  PY=python3
  NICE=""
  CPU=""
  PRECISIONS="32-true bf16-mixed 16-mixed"
  JOBS=${GPU_CHECK_JOBS:-4}
  DEADLINE_S=${GPU_CHECK_DEADLINE_S:-450}
  SCALE=1
  LOOP_ARGS=(--device cuda --precision bf16-mixed --epochs 2 --limit-batches 150 --threads 4)
fi
export GPU_CHECK_WORK=${GPU_CHECK_WORK:-/tmp/gpu_check} PYTHONUNBUFFERED=1
W=$GPU_CHECK_WORK
rm -rf "$W" && mkdir -p "$W" "$OUT"
LOG=$OUT/log.txt
: > "$LOG"
START=$(date +%s)

# step NAME CAP_S COMMAND...: run it under `timeout`, output to the log, and one line of steps.jsonl.
step() {
  local name=$1 cap=$(($2 * SCALE)); shift 2
  local left=$((DEADLINE_S - ($(date +%s) - START)))
  if ! wanted "$name"; then return; fi
  if [ "$left" -lt 30 ]; then
    echo "== $name: skipped, ${left} s left before the deadline" | tee -a "$LOG"
    printf '{"step": "%s", "rc": -1, "seconds": 0, "cap": 0, "note": "skipped: deadline"}\n' "$name" >> "$W/steps.jsonl"
    return
  fi
  [ "$cap" -gt "$left" ] && cap=$left
  echo "== $name (cap ${cap} s, $((left)) s left): $*" | tee -a "$LOG"
  local t0=$(date +%s)
  # Its own process group, killed whole afterwards: runs that a stopped step leaves behind must not hold the GPU.
  setsid $NICE timeout -k 15 "$cap" "$@" >> "$LOG" 2>&1 &
  local pid=$!
  wait "$pid"
  local rc=$?
  kill -9 -- "-$pid" 2>/dev/null
  local took=$(($(date +%s) - t0))
  echo "== $name: exit $rc after ${took} s" | tee -a "$LOG"
  printf '{"step": "%s", "rc": %d, "seconds": %d, "cap": %d}\n' "$name" "$rc" "$took" "$cap" >> "$W/steps.jsonl"
}

install() {
  # What ../shared/gpu/README.md says: the wheels the image lacks, and the data archives, from .device/.
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .device/whl/*.whl || return 1
  mkdir -p /tmp/data
  for a in .device/data/*.tar.gz; do [ -e "$a" ] && { tar -C /tmp/data -xzf "$a" || return 1; }; done
  ls /tmp/data
}
tests() {
  set -o pipefail
  $PY -m pytest -q -m gpu -p no:cacheprovider -o addopts="" tests/test_gpus.py tests/test_data.py -rs \
    2>&1 | tee "$W/tests.txt"
}
export -f install tests  # `timeout` runs programs: these run as `bash -c NAME`
export PY W
if wanted install; then
  step install 90 bash -c install
  export PYTHONPATH=/tmp/site:$PWD/src DLFOUND_DATA=/tmp/data
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$LOG" 2>&1
elif [ "$DRY" != 1 ]; then
  export PYTHONPATH=/tmp/site:$PWD/src DLFOUND_DATA=${DLFOUND_DATA:-/tmp/data}  # a rerun on the warm machine
fi

step env 30 $PY scripts/gpu_check.py env $CPU --json "$W/env.json"
step tests 100 bash -c tests
# shellcheck disable=SC2086  # the precisions are words
step families 170 $PY scripts/gpu_check.py runs families $CPU --precisions $PRECISIONS --jobs "$JOBS" \
  --timeout $((150 * SCALE)) --json "$W/families.json"
# shellcheck disable=SC2086
step resnet18 120 $PY scripts/gpu_check.py runs resnet18 $CPU --precisions $PRECISIONS --jobs "$JOBS" \
  --timeout $((110 * SCALE)) --json "$W/resnet18.json"
step sweep 75 $PY scripts/gpu_check.py sweep $CPU --timeout $((70 * SCALE)) --json "$W/sweep.json"
step loop 180 $PY scripts/benchmark_loop.py --json "$W/loop.json" \
  --cases lenet5_mnist_on_device resnet18_cifar10 vit_tiny_cifar10 dcgan_mnist dncnn "${LOOP_ARGS[@]}"
LEFT=$((DEADLINE_S - ($(date +%s) - START) - 15))
step paper "$((LEFT / SCALE))" $PY scripts/gpu_check.py paper $CPU --seconds "$LEFT" --out "$OUT" --json "$W/paper.json"

$PY scripts/gpu_check.py summary "$OUT" > /dev/null 2>> "$LOG" || echo "summary failed: see log.txt" >> "$LOG"
echo "gpu_check: $(($(date +%s) - START)) s; $OUT/summary.md" | tee -a "$LOG"
