"""Train the default anomaly model (IsolationForest) on simulated windows and export it to ONNX with its sidecar.

Input: the CSV written by scoring/dist/tools/make-training-data.js (one row per device and 10 s window, every stat
of every metric, plus the ground-truth label). Training is unsupervised (labels are never seen by the forest); the
threshold is chosen on a calibration split (best F1) and precision/recall are reported on a later, held-out split.

The exported graph takes the declared raw features as one float tensor [batch, 12] (the contract's input) and does
its own feature engineering, so the service only ever reads `metric.stat` values:
    per metric m:  log(max(m.max - m.min, 0) + eps_m),  log(max(m.stddev, 0) + eps_m);  plus log(vib.max + eps)
(eps_m is half the simulator's rounding step for m). Spikes widen the range, a stuck sensor has zero spread, a
vibration burst raises vib.max and its spread. Drift moves the level slowly and is invisible inside one window.

Output `scores` [batch, 1] float32 = -score_samples = 2^(-E[h(x)]/c(n)), the anomaly score of Liu et al. in (0, 1]:
HIGHER IS MORE ANOMALOUS (skl2onnx's own `scores` output is decision_function = score_samples - offset_, higher =
more normal; the graph negates it and adds the offset back). `label` is dropped.
"""

import argparse
import json
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import IsolationForest

# What onnxruntime-node 1.30 (the service's runtime) loads; kept low so older runtimes load the model too.
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
IR_VERSION = 8

METRICS = ["temp", "humidity", "vib", "volt"]
# Half the simulator's rounding step per metric: 0.01 C, 0.1 %, 0.001 g, 0.01 V.
EPS = {"temp": 0.005, "humidity": 0.05, "vib": 0.0005, "volt": 0.005}
FEATURES = [f"{m}.{s}" for m in METRICS for s in ("min", "max", "stddev")]


def load_csv(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
    data = np.genfromtxt(path, delimiter=",", skip_header=1, usecols=range(4, len(header)), dtype=np.float64)
    cols = {name: i for i, name in enumerate(header[4:])}
    meta = np.genfromtxt(path, delimiter=",", skip_header=1, usecols=(1, 2), dtype=np.float64)
    kinds = []
    with open(path) as f:
        f.readline()
        for line in f:
            kinds.append(line.split(",", 4)[3])
    x = np.stack([data[:, cols[name]] for name in FEATURES], axis=1).astype(np.float32)
    return x, meta[:, 0], meta[:, 1].astype(np.int64), np.array(kinds)


def derive(x):
    """numpy twin of the graph's feature engineering (see the module docstring)."""
    out = []
    idx = {name: i for i, name in enumerate(FEATURES)}
    for m in METRICS:
        out.append(np.log(np.maximum(x[:, idx[f"{m}.max"]] - x[:, idx[f"{m}.min"]], 0) + EPS[m]))
    for m in METRICS:
        out.append(np.log(np.maximum(x[:, idx[f"{m}.stddev"]], 0) + EPS[m]))
    out.append(np.log(np.maximum(x[:, idx["vib.max"]], 0) + EPS["vib"]))
    return np.stack(out, axis=1).astype(np.float32)


def prep_nodes():
    """ONNX nodes X[batch, 12] -> d[batch, 9], the same arithmetic as derive()."""
    idx = {name: i for i, name in enumerate(FEATURES)}
    inits = [
        numpy_helper.from_array(np.array([idx[f"{m}.max"] for m in METRICS], np.int64), "prep_max_idx"),
        numpy_helper.from_array(np.array([idx[f"{m}.min"] for m in METRICS], np.int64), "prep_min_idx"),
        numpy_helper.from_array(np.array([idx[f"{m}.stddev"] for m in METRICS], np.int64), "prep_std_idx"),
        numpy_helper.from_array(np.array([idx["vib.max"]], np.int64), "prep_vibmax_idx"),
        numpy_helper.from_array(np.zeros((1,), np.float32), "prep_zero"),
        numpy_helper.from_array(
            np.array([EPS[m] for m in METRICS] * 2 + [EPS["vib"]], np.float32), "prep_eps"
        ),
    ]
    nodes = [
        helper.make_node("Gather", ["X", "prep_max_idx"], ["prep_max"], axis=1),
        helper.make_node("Gather", ["X", "prep_min_idx"], ["prep_min"], axis=1),
        helper.make_node("Gather", ["X", "prep_std_idx"], ["prep_std"], axis=1),
        helper.make_node("Gather", ["X", "prep_vibmax_idx"], ["prep_vibmax"], axis=1),
        helper.make_node("Sub", ["prep_max", "prep_min"], ["prep_range"]),
        helper.make_node("Concat", ["prep_range", "prep_std", "prep_vibmax"], ["prep_cat"], axis=1),
        helper.make_node("Max", ["prep_cat", "prep_zero"], ["prep_pos"]),
        helper.make_node("Add", ["prep_pos", "prep_eps"], ["prep_shift"]),
        helper.make_node("Log", ["prep_shift"], ["d"]),
    ]
    return nodes, inits


def export(forest, n_derived, meta):
    """The full graph: prep -> skl2onnx IsolationForest -> anomaly score. Returns the ModelProto."""
    inner = convert_sklearn(
        forest,
        initial_types=[("d", FloatTensorType([None, n_derived]))],
        target_opset=TARGET_OPSET,
    )
    g = inner.graph
    # Rename the converter's `scores` (decision_function) so the final output can take the name.
    for node in g.node:
        node.output[:] = ["decision" if o == "scores" else o for o in node.output]
        node.input[:] = ["decision" if i == "scores" else i for i in node.input]
    nodes, inits = prep_nodes()
    inits.append(numpy_helper.from_array(np.array([forest.offset_], np.float32), "post_offset"))
    post = [
        helper.make_node("Neg", ["decision"], ["post_neg"]),
        helper.make_node("Sub", ["post_neg", "post_offset"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes + list(g.node) + post,
        "fleetpulse_iforest",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", len(FEATURES)])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 1])],
        initializer=inits + list(g.initializer),
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in TARGET_OPSET.items()],
        producer_name="fleetpulse-scoring-train",
    )
    model.ir_version = IR_VERSION
    model = onnx.shape_inference.infer_shapes(model)
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key = k
        entry.value = v if isinstance(v, str) else json.dumps(v)
    onnx.checker.check_model(model, full_check=True)
    return model


def prf(pred, y):
    tp = int(np.sum(pred & (y == 1)))
    fp = int(np.sum(pred & (y == 0)))
    fn = int(np.sum(~pred & (y == 1)))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, help="model path without extension, e.g. scoring/models/iforest")
    ap.add_argument("--version", default="1")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--trees", type=int, default=50)
    ap.add_argument("--max-samples", type=int, default=2048)
    ap.add_argument("--report", help="write the evaluation as JSON here too")
    a = ap.parse_args()
    t0 = time.time()

    x, start, y, kinds = load_csv(a.data)
    ok = np.all(np.isfinite(x), axis=1)
    x, start, y, kinds = x[ok], start[ok], y[ok], kinds[ok]
    order = np.argsort(start, kind="stable")
    x, start, y, kinds = x[order], start[order], y[order], kinds[order]
    n = len(y)
    # Time split: the forest learns on the first 60 % of event time, the threshold on the next 20 %, the report on
    # the last 20 % (unseen by both).
    i1, i2 = int(n * 0.6), int(n * 0.8)
    d = derive(x)
    forest = IsolationForest(n_estimators=a.trees, max_samples=a.max_samples, contamination="auto", random_state=a.seed)
    forest.fit(d[:i1])
    anomaly = -forest.score_samples(d)

    cal_s, cal_y = anomaly[i1:i2], y[i1:i2]
    best = (0.0, 0.5)
    for t in np.unique(np.quantile(cal_s, np.linspace(0.5, 0.999, 500))):
        f = prf(cal_s >= t, cal_y)[2]
        if f > best[0]:
            best = (f, float(t))
    threshold = round(best[1], 6)

    test_s, test_y, test_k = anomaly[i2:], y[i2:], kinds[i2:]
    p, r, f = prf(test_s >= threshold, test_y)
    per_kind = {}
    for k in ("spike", "stuck", "drift", "vibburst"):
        mask = np.array([k in s for s in test_k])
        if mask.any():
            per_kind[k] = {"windows": int(mask.sum()), "recall": round(float(np.mean(test_s[mask] >= threshold)), 4)}

    meta = {
        "version": a.version,
        "features": FEATURES,
        "resolution": "10s",
        "output": "scores",
        "threshold": threshold,
        "higherIsAnomalous": True,
    }
    model = export(forest, d.shape[1], meta)
    onnx.save(model, a.out + ".onnx")
    with open(a.out + ".json", "w") as f_:
        json.dump(meta, f_, indent=2)
        f_.write("\n")

    # The exported graph must give what sklearn gives, on the raw features.
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(a.out + ".onnx", so, providers=["CPUExecutionProvider"])
    got = sess.run(["scores"], {"X": x[i2:]})[0].reshape(-1)
    diff = float(np.max(np.abs(got - test_s)))
    if diff > 1e-3:
        sys.exit(f"export mismatch: max |onnx - sklearn| = {diff}")

    report = {
        "windows": {"train": i1, "calibration": i2 - i1, "test": n - i2},
        "anomalousWindows": {"train": int(y[:i1].sum()), "test": int(test_y.sum())},
        "threshold": threshold,
        "calibrationF1": round(best[0], 4),
        "test": {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)},
        "recallByKind": per_kind,
        "onnxMaxAbsDiff": diff,
        "seconds": round(time.time() - t0, 1),
    }
    print(json.dumps(report, indent=2))
    if a.report:
        with open(a.report, "w") as f_:
            json.dump(report, f_, indent=2)
            f_.write("\n")


if __name__ == "__main__":
    main()
