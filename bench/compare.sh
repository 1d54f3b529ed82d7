#!/usr/bin/env bash
# Side by side: `harness bench` and the peer scripts (shared/peers: NumPy, scikit-learn,
# PyTorch) on the same configs, interleaved row by row in one run, with the ratio
# peer seconds / harness seconds per epoch (above 1: harness is faster).
#
#   python3 -m venv .venv-peers
#   .venv-peers/bin/pip install numpy scikit-learn torch
#   bench/compare.sh [repetitions]          # PY=... and PEERS=... override the defaults
#
# Seconds per epoch are medians over the measured epochs (harness: after one warm-up epoch;
# peers: their own median). Compare rows of one run only: the machine's load changes figures.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PY:-.venv-peers/bin/python}
peers=${PEERS:-../shared/peers}
repetitions=${1:-1}
[ -x "$py" ] || { echo "no Python with the peers' packages at $py (set PY)" >&2; exit 2; }
[ -d "$peers" ] || { echo "no peer scripts at $peers (set PEERS)" >&2; exit 2; }

cargo build --release --quiet
harness=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/harness

field() { # field NAME: read one JSON line on stdin, print a field
  python3 -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"
}
ours() { "$harness" bench --configs "$1" --epochs 3 --json | field seconds_per_epoch; }
peer() { # peer SCRIPT ARGS...
  "$py" "$peers/$1" --data-dir data/mnist "${@:2}" 2>/dev/null | field epoch_time_median
}
row() { # row CONFIG PEER-LABEL HARNESS-SECONDS PEER-SECONDS
  awk -v c="$1" -v p="$2" -v h="$3" -v s="$4" \
    'BEGIN { printf "| %s | %.3f | %s | %.3f | %.2fx |\n", c, h, p, s, s / h }'
}

cpu() { grep -m1 "^$1" /proc/cpuinfo | cut -d: -f2 | xargs; }
echo "machine: $(nproc) CPUs, $(cpu 'model name') ($(cpu vendor_id), family $(cpu 'cpu family') model $(cpu 'model\s*:' || true)); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "harness $("$harness" --version | cut -d' ' -f2), $("$py" -c 'import numpy, sklearn; print("numpy", numpy.__version__, "scikit-learn", sklearn.__version__)')$("$py" -c 'import torch; print(", torch", torch.__version__)' 2>/dev/null || true)"
echo
echo "| config | harness s/epoch | peer | peer s/epoch | peer / harness |"
echo "|---|---|---|---|---|"
for _ in $(seq "$repetitions"); do
  h=$(ours sigmoid_b10)
  p=$(peer numpy_mlp.py --hidden 16,16 --activation sigmoid --loss mse --optimizer sgd --lr 3.0 --batch-size 10 --epochs 3 --threads 1)
  row sigmoid_b10 "NumPy f64, 1 thread" "$h" "$p"

  h=$(ours relu_b64)
  p=$(peer sklearn_mlp.py --hidden 16,16 --activation relu --optimizer adam --lr 1e-3 --batch-size 64 --epochs 5 --threads 1)
  row relu_b64 "scikit-learn, 1 thread" "$h" "$p"

  for width in 128 800; do
    h=$(ours "wide${width}_b128")
    if "$py" -c 'import torch' 2>/dev/null; then
      for threads in 1 2; do
        p=$(peer torch_mlp.py --hidden "$width" --activation relu --loss ce --optimizer adam --lr 1e-3 --batch-size 128 --epochs 3 --threads "$threads")
        row "wide${width}_b128" "PyTorch, $threads thread(s)" "$h" "$p"
      done
    else
      echo "| wide${width}_b128 | $h | PyTorch not installed | - | - |"
    fi
  done
done
