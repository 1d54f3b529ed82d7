#!/usr/bin/env bash
# Benchmark: wall time of a whole sweep with --jobs 1 and --jobs 2, and the ratio.
# Each run starts from empty results (in a temporary folder) so every point trains.
#
#   bench/sweep_jobs.sh [experiments/ci.toml] [repetitions]
set -euo pipefail
cd "$(dirname "$0")/.."
experiment=$(realpath "${1:-experiments/ci.toml}")
repetitions=${2:-3}
cargo build --release --quiet
harness=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/harness

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
seconds() { # seconds JOBS: wall time of one fresh sweep
  local dir="$work/jobs$1-$RANDOM"
  mkdir -p "$dir"
  local start end
  start=$(date +%s.%N)
  (cd "$dir" && "$harness" sweep "$experiment" --jobs "$1" --strict --set output.save_model=false >/dev/null)
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }' 
}

echo "experiment: $experiment ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-4s %10s %10s %8s\n' rep jobs1_s jobs2_s ratio
for rep in $(seq "$repetitions"); do
  one=$(seconds 1)
  two=$(seconds 2)
  awk -v r="$rep" -v a="$one" -v b="$two" 'BEGIN { printf "%-4s %10.2f %10.2f %8.2f\n", r, a, b, a / b }' 
done
