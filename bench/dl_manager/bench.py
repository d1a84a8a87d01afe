#!/usr/bin/python3
"""dl_manager archive build benchmark: the C++ builder against the original service.

    bench/dl_manager/bench.py --bin BUILD/bin [--items 1000000] [--runs 3] [--deflate-level 1]

Starts a private PostgreSQL (tests/lib/pg-instance), seeds a project (ITEMS items, 20%
labeled, 32 features, 10 classes), trains a scikit-learn LogisticRegression on the
labeled items and stores it twice: pickled (for the baseline) and as labelloop model
JSON (two models: one without stored predictions, so the C++ builder applies the
model to every unlabeled item like the original did, and one with predictions stored).
Then, alternating, RUNS times each:
  cpp-model    dl_manager_bench build (in process; peak RSS = VmHWM of that process)
  python       the original service reimplemented: pandas read_sql, pickled sklearn
               classifier predict_proba, DataFrame.to_json, zipfile (deflate at the same
               level), stored as one bytea through psycopg2
  cpp-stored   dl_manager_bench build, machine labels from the stored predictions
Prints the medians and the load average. Each build runs in its own process.

    --big-gib G  also (no database needed) writes one G GiB JSON entry through the same
                 ZipWriter + ThreadedProducer path (dl_manager_bench big-entry), reads it
                 back with libzip and prints its peak RSS: memory does not grow with the
                 size of an entry or archive. With --big-only, only that.
"""
import argparse
import hashlib
import io
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def peak_rss_mib():
    """VmHWM of this process (getrusage's ru_maxrss survives exec: it would include
    the driver's size)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return -1.0


def baseline(url, project_id, level):
    """The original Python service: everything in memory, one bytea at the end."""
    import numpy as np
    import pandas as pd
    import psycopg2
    warnings.filterwarnings("ignore")
    start = time.monotonic()
    conn = psycopg2.connect(url)
    cur = conn.cursor()
    items = pd.read_sql_query(
        "SELECT item_id, external_id, sample_ts, features, labeled, labels "
        "FROM labeling.v_items WHERE project_id = %(p)s ORDER BY item_id",
        conn, params={"p": project_id})
    labels = pd.read_sql_query(
        "SELECT item_id, annotator, classes, created_at, updated_at, seconds_spent "
        "FROM labeling.v_labels WHERE project_id = %(p)s", conn, params={"p": project_id})
    cur.execute("SELECT pickle FROM bench_baseline.classifiers WHERE project_id = %s",
                (project_id,))
    blob = bytes(cur.fetchone()[0])
    clf = pickle.loads(blob)
    unl = items[~items.labeled]
    proba = clf.predict_proba(np.array(unl.features.tolist(), dtype=np.float64))
    classes = [str(c) for c in clf.classes_]
    best = proba.argmax(axis=1)
    machine = pd.DataFrame({
        "item_id": unl.item_id.values, "external_id": unl.external_id.values,
        "sample_ts": unl.sample_ts.values,
        "predicted": [[classes[i]] for i in best], "confidence": proba.max(axis=1),
        "probabilities": [dict(zip(classes, row)) for row in proba.tolist()]})
    agg = labels.groupby("item_id").agg(annotators=("annotator", lambda s: sorted(s)),
                                        labeled_at=("updated_at", "max")).reset_index()
    human = items[items.labeled][["item_id", "external_id", "sample_ts", "labels"]].merge(
        agg, on="item_id", how="left")
    stamps = items[["item_id", "external_id", "sample_ts", "labeled"]].merge(
        labels.rename(columns={"classes": "label_classes", "created_at": "submitted_at"}),
        on="item_id", how="left")
    buf = io.BytesIO()
    manifest = {"project_id": project_id, "entries": {}}
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        for name, df in (("human_labels.json", human), ("machine_labels.json", machine),
                         ("timestamps.json", stamps)):
            data = df.to_json(orient="records", date_format="iso").encode()
            manifest["entries"][name] = {"rows": len(df), "sha256": hashlib.sha256(data).hexdigest()}
            z.writestr(name, data)
            del data
        z.writestr("classifier/model.pkl", blob)
        z.writestr("manifest.json", json.dumps(manifest))
    archive = buf.getvalue()
    cur.execute("INSERT INTO bench_baseline.archives (project_id, data) VALUES (%s, %s)",
                (project_id, psycopg2.Binary(archive)))
    conn.commit()
    seconds = time.monotonic() - start
    rss = peak_rss_mib()
    cur.execute("DELETE FROM bench_baseline.archives")
    conn.commit()
    print(json.dumps({"seconds": seconds, "peak_rss_mib": rss, "bytes": len(archive),
                      "rows": len(human) + len(machine) + len(stamps)}))


def train(url, project_id):
    """Fits the classifier once; stores it pickled and as two labelloop models."""
    import numpy as np
    import pandas as pd
    import psycopg2
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    warnings.filterwarnings("ignore")
    conn = psycopg2.connect(url)
    cur = conn.cursor()
    cur.execute("CREATE SCHEMA IF NOT EXISTS bench_baseline")
    cur.execute("CREATE TABLE IF NOT EXISTS bench_baseline.classifiers "
                "(project_id bigint PRIMARY KEY, pickle bytea NOT NULL)")
    cur.execute("CREATE TABLE IF NOT EXISTS bench_baseline.archives "
                "(id bigserial PRIMARY KEY, project_id bigint, data bytea)")
    cur.execute("SELECT model_id FROM training.v_models WHERE project_id = %s ORDER BY version",
                (project_id,))
    models = [r[0] for r in cur.fetchall()]
    if len(models) == 2:
        conn.commit()
        return models
    labeled = pd.read_sql_query(
        "SELECT features, labels FROM labeling.v_items WHERE project_id = %(p)s AND labeled",
        conn, params={"p": project_id})
    X = np.array(labeled.features.tolist(), dtype=np.float64)
    y = np.array([l[0] for l in labeled.labels])
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    pipe.fit(X, y)
    scaler, lr = pipe.steps[0][1], pipe.steps[1][1]
    classes = [str(c) for c in lr.classes_]
    model_json = {
        "format": "labelloop.model.v1", "model_type": "softmax", "multi_label": False,
        "classes": classes, "feature_dim": X.shape[1],
        "standardization": {"mean": scaler.mean_.tolist(), "std": scaler.scale_.tolist()},
        "layers": [{"weights": lr.coef_.tolist(), "bias": lr.intercept_.tolist(),
                    "activation": "softmax"}],
        "spec": {"model": "LogisticRegression", "max_iter": 300},
        "metrics": {"train_accuracy": float(pipe.score(X, y))}}
    cur.execute("INSERT INTO bench_baseline.classifiers VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (project_id, psycopg2.Binary(pickle.dumps(pipe))))
    ids = []
    for version, ready in ((1, False), (2, True)):
        cur.execute(
            "INSERT INTO training.models (project_id, version, model_type, multi_label, "
            "classes, model_json, labeled_items, predictions_ready) "
            "VALUES (%s, %s, 'softmax', false, %s, %s, %s, %s) RETURNING id",
            (project_id, version, classes, json.dumps(model_json), len(y), ready))
        ids.append(cur.fetchone()[0])
    # Stored predictions for the second model, as the training service writes them:
    # packed chunks of up to 65,536 rows in item order (training.prediction_chunks).
    unl = pd.read_sql_query(
        "SELECT item_id, features FROM labeling.v_items WHERE project_id = %(p)s AND NOT labeled "
        "ORDER BY item_id", conn, params={"p": project_id})
    proba = pipe.predict_proba(np.array(unl.features.tolist(), dtype=np.float64))
    item_ids = unl.item_id.to_numpy(dtype="<i8")
    proba = np.ascontiguousarray(proba, dtype="<f4")
    chunk_rows = 65536
    for chunk, start in enumerate(range(0, len(item_ids), chunk_rows)):
        part = item_ids[start:start + chunk_rows]
        cur.execute(
            "INSERT INTO training.prediction_chunks (model_id, chunk, first_item_id, "
            "last_item_id, row_count, item_ids, probabilities) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (ids[1], chunk, int(part[0]), int(part[-1]), len(part),
             psycopg2.Binary(part.tobytes()),
             psycopg2.Binary(proba[start:start + chunk_rows].tobytes())))
    conn.commit()
    return ids


def run_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="build/bin with dl_manager_bench")
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--deflate-level", type=int, default=1)
    ap.add_argument("--pg-url", help="use this database instead of a private server")
    ap.add_argument("--port", type=int, default=56690)
    ap.add_argument("--big-gib", type=float, default=0,
                    help="also build a synthetic entry of this many GiB (see above)")
    ap.add_argument("--big-only", action="store_true", help="only the --big-gib check")
    args = ap.parse_args()
    bench = os.path.join(args.bin, "dl_manager_bench")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if args.big_gib > 0:
        res = run_json([bench, "big-entry", str(args.big_gib), str(args.deflate_level)])
        print(f"big entry: {res['entry_bytes'] / 2**30:.2f} GiB JSON ({res['records']} records) "
              f"-> {res['archive_bytes'] / 2**30:.2f} GiB archive in {res['seconds']:.1f} s, "
              f"peak RSS {res['peak_rss_mib']:.1f} MiB, read back "
              f"{'ok' if res['read_back_ok'] else 'FAILED'}", flush=True)
        if args.big_only:
            return

    tmp = None
    url = args.pg_url
    if not url:
        tmp = tempfile.mkdtemp(prefix="dlbench-")
        subprocess.run([os.path.join(ROOT, "tests/lib/pg-instance"), "start", tmp + "/pg",
                        str(args.port)], check=True)
        url = f"postgresql://labelloop@127.0.0.1:{args.port}/postgres"
    try:
        t = time.monotonic()
        project = run_json([bench, "prepare", url, str(args.items), "0.2", "32", "10"])["project_id"]
        models = train(url, project)
        print(f"prepared project {project} (models {models}) in {time.monotonic() - t:.0f} s",
              flush=True)
        results = {"cpp-model": [], "python": [], "cpp-stored": []}
        for r in range(args.runs):
            for name, cmd in (
                    ("cpp-model", [bench, "build", url, str(project), str(models[0]),
                                   str(args.deflate_level)]),
                    ("python", [sys.executable, __file__, "--baseline", url, str(project),
                                str(args.deflate_level)]),
                    ("cpp-stored", [bench, "build", url, str(project), str(models[1]),
                                    str(args.deflate_level)])):
                res = run_json(cmd)
                results[name].append(res)
                print(f"run {r + 1} {name:10s} {res['seconds']:7.2f} s  "
                      f"peak RSS {res['peak_rss_mib']:7.1f} MiB  {res['bytes'] / 2**20:7.1f} MiB "
                      f"archive  {res['rows']} rows", flush=True)
        print()
        print(f"workload: {args.items} items, 20% labeled, 32 features, 10 classes; deflate "
              f"level {args.deflate_level}; {os.cpu_count()} cores; {args.runs} runs, medians")
        med = {k: (statistics.median(x["seconds"] for x in v),
                   statistics.median(x["peak_rss_mib"] for x in v),
                   statistics.median(x["bytes"] for x in v)) for k, v in results.items()}
        for k, (s, rss, size) in med.items():
            print(f"  {k:10s} {s:7.2f} s  peak RSS {rss:7.1f} MiB  archive {size / 2**20:6.1f} MiB"
                  + (f"  speed-up vs python {med['python'][0] / s:4.1f}x" if k != "python" else ""))
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if tmp:
            subprocess.run([os.path.join(ROOT, "tests/lib/pg-instance"), "stop", tmp + "/pg"])


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--baseline":
        baseline(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        main()
