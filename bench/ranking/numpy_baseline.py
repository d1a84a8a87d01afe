#!/usr/bin/python3
"""numpy baseline: score each strategy and select the top 1,000 with argpartition (as the
modAL library does), on the same float32 matrix as ranking_score_bench."""
import sys
import time

import numpy as np

ROWS, CLASSES, TOP = 1_000_000, 10, 1000


def least_confidence(p):
    return 1.0 - p.max(axis=1)


def margin(p):
    part = np.partition(-p, 1, axis=1)
    return 1.0 - (-part[:, 0] + part[:, 1])


def entropy(p):
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(p > 0, p * np.log(p), 0.0)
    return -plogp.sum(axis=1)


def random_(p, rng=np.random.default_rng(7)):
    return rng.random(p.shape[0], dtype=np.float32)


def main():
    path, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 11
    p = np.fromfile(path, dtype=np.float32).reshape(ROWS, CLASSES)
    print(f"numpy {np.__version__}: same workload, {runs} runs, 1 thread")
    for name, fn in [("least_confidence", least_confidence), ("margin", margin),
                     ("entropy", entropy), ("random", random_)]:
        times, cpu = [], []
        for _ in range(runs):
            c0 = time.process_time()
            t0 = time.perf_counter()
            s = fn(p)
            top = np.argpartition(-s, TOP)[:TOP]
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        times.sort()
        cpu.sort()
        print(f"numpy {name} median_ms {times[len(times) // 2]:.3f} min_ms {times[0]:.3f} "
              f"top_id_sum {int(top.sum())} best_score {float(s[top].max()):.6f} "
              f"cpu_median_ms {cpu[len(cpu) // 2]:.3f}")


if __name__ == "__main__":
    main()
