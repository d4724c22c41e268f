#!/usr/bin/env bash
# The GPU measurements of benchmarks/RESULTS.md (items 1, 3 and 4 on a GPU machine), sized to fit
# about nine minutes: run from the repository root on a machine with the CUDA build of JAX.
#   [PYTHON=python3] bash benchmarks/gpu_round.sh OUT_DIR
set -u
out=${1:-benchmarks}
tag=gpu
timeout 170 ${PYTHON:-python} benchmarks/bench_batch.py --device gpu --vectorize --fits 100 --repeats 2 --loop-fits 10 \
    --out "$out/results_batch_$tag.json" > "$out/batch_$tag.log" 2>&1
timeout 110 ${PYTHON:-python} benchmarks/bench_batch.py --device cpu --fits 100 --repeats 1 --loop-fits 2 \
    --out "$out/results_batch_cpu_same_machine.json" > "$out/batch_cpu_same_machine.log" 2>&1
timeout 170 ${PYTHON:-python} benchmarks/bench_scaling.py --device gpu --points 1000,100000,1000000 --families 30,200 \
    --out "$out/results_scaling_$tag.json" > "$out/scaling_$tag.log" 2>&1
timeout 90 ${PYTHON:-python} benchmarks/bench_fit.py --cases l2l --devices cpu,gpu --repeats 1 \
    --out "$out/results_fit_$tag.json" > "$out/fit_$tag.log" 2>&1
