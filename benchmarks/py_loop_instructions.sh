#!/usr/bin/env bash
# Instructions per bar of a Python strategy (examples/strategies/sma_cross.py) through the
# engine, for this checkout or another one (each with its own built .venv):
#   benchmarks/py_loop_instructions.sh [CHECKOUT_DIR] [BARS]
# Two runs under callgrind, of BARS and 2 x BARS bars; their difference divided by BARS is
# the cost of one bar (imports, start-up and data generation cancel out). Counting
# instructions makes two builds comparable on a busy machine, where seconds are not.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$here}"
bars="${2:-20000}"
py="$dir/.venv/bin/python"
# Progress bars redraw by the clock and hashing is seeded at random: both would make the
# counts depend on more than the code.
export TQDM_DISABLE=1 PYTHONHASHSEED=0 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
script="$(mktemp --suffix=.py)"
cat > "$script" <<'PY'
import sys
import numpy as np
import pandas as pd
sys.path.insert(0, sys.argv[2] + "/examples/strategies")
from sma_cross import SmaCross
from bt_core import Backtest

n = int(sys.argv[1])
rng = np.random.default_rng(42)
close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
open_ = np.r_[close[0], close[:-1]]
idx = pd.date_range("2020-01-01", periods=n, freq="min")
df = pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.0005,
                   "low": np.minimum(open_, close) * 0.9995, "close": close,
                   "volume": 1.0}, index=idx)
r = Backtest(df, SmaCross, commission=0.0005).run()
print(f"bars {n}: trades {len(r.trades)} equity {r.final_equity:.6f}")
PY
count() {
    local out
    out="$(mktemp)"
    valgrind --tool=callgrind --callgrind-out-file="$out" "$py" "$script" "$1" "$dir" 2>&1 \
        | grep -E "^bars" >&2 || true
    grep -E "^(summary|totals):" "$out" | head -1 | awk '{print $2}'
    rm -f "$out"
}
a=$(count "$bars")
b=$(count $((2 * bars)))
rm -f "$script"
echo "instructions per bar: $(( (b - a) / bars )) (python strategy, sma_cross) in $dir"
