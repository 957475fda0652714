#!/usr/bin/env bash
# Everything a GPU must measure for the real-time path, in one call (about 9 minutes on an H100):
#
#   bash benchmarks/gpu_run.sh                 # from the repository root; results in $OUT (default ./gpu_out)
#
# 1. the GPU tests (tests/test_realtime_gpu.py: CUDA graphs replayed and not skipped, fp8 tensor cores
#    in bf16, fp16 and fp32, strided attention at head size 128, the decode worker against a slow
#    producer, ...) with the CPU tests of the same options and the host-sync count;
# 2. benchmarks/causal_video.py at the 1.3B shape, 832x480 (every row, the 14B-shape row, the block's
#    work counted and the device's ceilings measured), its table last.
#
# Made for a machine with no network and no ComfyUI (a lent GPU): it needs only torch, safetensors,
# einops, numpy, pillow, tqdm and pytest. What needs ComfyUI (the decode rows, the dynamic-VRAM and
# ComfyUI-fp8 tests) skips there and says so; set COMFYUI_PATH to a ComfyUI whose requirements are
# installed to run those too. The official Self Forcing pipeline row runs when SELF_FORCING_PATH names
# a guandeh17/Self-Forcing checkout (or one is carried at .gpu_carry/Self-Forcing, an ignored folder).
# Without CUDA it runs the same steps at the small scale with the shortest videos (--quick), to try the
# whole run end to end on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_out}
mkdir -p "$out"
py=${PYTHON:-python3}
if [ -z "${SELF_FORCING_PATH:-}" ] && [ -f .gpu_carry/Self-Forcing/pipeline/causal_inference.py ]; then
  export SELF_FORCING_PATH=$PWD/.gpu_carry/Self-Forcing
fi
if "$py" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  quick=(); budget=${TEMPO_BENCH_SECONDS:-420}
else
  quick=(--quick --no-compile); budget=${TEMPO_BENCH_SECONDS:-900}
  echo "gpu_run: no CUDA here: the same steps at the small scale (--quick), to try the run end to end"
fi
{ nvidia-smi || true; "$py" -c "import torch; print('torch', torch.__version__)"; } > "$out/device.txt" 2>&1

echo "=== tests (GPU ones skip without CUDA, saying why) ==="
"$py" -m pytest -q -p no:cacheprovider -rs tests/test_realtime_gpu.py tests/test_host_syncs_unit.py \
  tests/test_realtime_unit.py > "$out/tests.txt" 2>&1
tests=$?
tail -n 25 "$out/tests.txt"

echo "=== benchmarks/causal_video.py ${quick[*]} ==="
timeout "$budget" "$py" benchmarks/causal_video.py "${quick[@]}" --json "$out/causal_video.json" \
  > "$out/causal_video.txt" 2>&1
bench=$?
[ "$bench" = 124 ] && echo "gpu_run: the benchmark ran past ${budget} s; the rows it made are in $out/causal_video.txt"
tail -n 45 "$out/causal_video.txt"
echo "gpu_run: tests rc=$tests, benchmark rc=$bench; everything is in $out/"
[ "$tests" = 0 ] && [ "$bench" = 0 ]
