#!/usr/bin/env bash
# TPE against random search on the space of experiments/search_16x16.toml: 40 trials of 5 epochs
# each, for the experiment seeds given (default 1 2 3), both searches with the same seed.
# Usage: [SEARCHES="tpe random"] bench/tpe_vs_random.sh OUT_DIR [SEED...]   (from the root, after
# `cargo build --release`); then harness plot OUT_DIR/*/runs.csv --chart search -o search.svg
set -euo pipefail
out=${1:?usage: bench/tpe_vs_random.sh OUT_DIR [SEED...]}
shift
seeds=("${@:-1 2 3}")
[ $# -eq 0 ] && seeds=(1 2 3)
bin=${HARNESS:-target/release/harness}
grep -m1 'model name' /proc/cpuinfo || true
for seed in "${seeds[@]}"; do
  for search in ${SEARCHES:-tpe random}; do
    dir="$out/${search}_s$seed"
    mkdir -p "$dir"
    # The experiment with its seed, beside the original so that its base path still resolves.
    file="experiments/.${search}_16x16_s$seed.toml"
    sed "s/^seed = 1$/seed = $seed/" "experiments/${search}_16x16.toml" > "$file"
    start=$(date +%s)
    "$bin" sweep "$file" --jobs 2 --set "output.runs=$dir/runs.csv" \
      --set "output.epochs=$dir/epochs.csv" --set output.save_model=false | tail -2
    echo "$search seed $seed: $(( $(date +%s) - start )) s"
    rm -f "$file"
  done
done
