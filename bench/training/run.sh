#!/bin/bash
# Training benchmark: our trainer and scikit-learn on the same synthetic data in one run.
#   bench/training/run.sh [BUILD_DIR] [REPEATS]
# Prints the workload, the cores, and medians over REPEATS runs of each.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
repeats=${2:-3}
# Debian's python3 (python3-sklearn, python3-numpy), not whatever python3 is first on PATH.
py=${PYTHON:-/usr/bin/python3}
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
echo "workload: 100,000 labeled x 32 features x 10 classes (sklearn make_classification, seed 7);"
echo "          20 epochs; held-out test set 20,000; predict 1,000,000 x 32"
echo "machine:  $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
echo "python:   $("$py" -c 'import sklearn, numpy; print("scikit-learn", sklearn.__version__, "numpy", numpy.__version__)')"
"$py" "$here/gen_data.py" "$data"
"$build/bin/training_bench" "$data" "$repeats"
"$py" "$here/sklearn_bench.py" "$data" "$repeats"
