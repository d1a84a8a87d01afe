#!/usr/bin/env python3
"""The scikit-learn baseline on the files gen_data.py wrote: LogisticRegression (default
lbfgs) and MLPClassifier(hidden_layer_sizes=(64,), max_iter=20), fit time and accuracy on
the held-out set, predict_proba throughput on 1,000,000 rows. Medians over REPEATS runs."""
import os
import statistics
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

warnings.filterwarnings("ignore", category=ConvergenceWarning)
d = sys.argv[1]
repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
load = lambda name, dt, cols: np.fromfile(os.path.join(d, name), dtype=dt).reshape(-1, cols) \
    if cols else np.fromfile(os.path.join(d, name), dtype=dt)
xtr, ytr = load("train_x.f32", np.float32, 32), load("train_y.i32", np.int32, 0)
xte, yte = load("test_x.f32", np.float32, 32), load("test_y.i32", np.int32, 0)
xpr = load("predict_x.f32", np.float32, 32)

def bench(name, make):
    fits, cpus, preds, pcpus, acc, iters = [], [], [], [], 0.0, 0
    for _ in range(repeats):
        model = make()
        t, c = time.perf_counter(), time.process_time()
        model.fit(xtr, ytr)
        fits.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        acc = (model.predict(xte) == yte).mean()
        iters = int(np.max(model[-1].n_iter_))
        t, c = time.perf_counter(), time.process_time()
        model.predict_proba(xpr)
        preds.append(time.perf_counter() - t)
        pcpus.append(time.process_time() - c)
    fit, pred = statistics.median(fits), statistics.median(preds)
    print(f"sklearn {name:8s} fit {fit:8.3f} s (cpu {statistics.median(cpus):7.3f} s)  "
          f"test accuracy {acc:.4f}  predict {len(xpr) / pred:10.0f} rows/s "
          f"(per cpu-s {len(xpr) / statistics.median(pcpus):10.0f})  iterations {iters}  (fits {', '.join(f'{f:.2f}' for f in fits)})")
    sys.stdout.flush()

# Standardisation as part of the model, as our trainer does (and lbfgs needs it).
bench("softmax", lambda: make_pipeline(StandardScaler(), LogisticRegression()))
bench("mlp", lambda: make_pipeline(StandardScaler(),
                                   MLPClassifier(hidden_layer_sizes=(64,), max_iter=20,
                                                 random_state=7)))
