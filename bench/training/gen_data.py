#!/usr/bin/env python3
"""Writes the benchmark data set (fixed seed) as raw little-endian files into DIR:
train_x.f32 (100,000 x 32), train_y.i32, test_x.f32 (20,000 x 32), test_y.i32,
predict_x.f32 (1,000,000 x 32). Ten classes, two clusters per class (not linearly
separable, so the MLP has something to gain)."""
import os
import sys

import numpy as np
from sklearn.datasets import make_classification

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
x, y = make_classification(n_samples=120_000, n_features=32, n_informative=20, n_redundant=4,
                           n_classes=10, n_clusters_per_class=2, class_sep=1.5, flip_y=0.01,
                           random_state=7)
x = x.astype(np.float32) * 3.0 + 1.0  # not standardised: the trainers must do it
y = y.astype(np.int32)
x[:100_000].tofile(os.path.join(out, "train_x.f32"))
y[:100_000].tofile(os.path.join(out, "train_y.i32"))
x[100_000:].tofile(os.path.join(out, "test_x.f32"))
y[100_000:].tofile(os.path.join(out, "test_y.i32"))
rng = np.random.default_rng(7)
(rng.standard_normal((1_000_000, 32), dtype=np.float32) * 3.0 + 1.0).tofile(
    os.path.join(out, "predict_x.f32"))
