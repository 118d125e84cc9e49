"""Test fixtures for the scoring service (scoring/fixtures/), each next to what it proves:

- iforest-v2.onnx: a second, smaller IsolationForest with the default model's features, its metadata only in
  metadata_props (version "2", no sidecar): the swap test replaces iforest.onnx with it.
- wrong-count.onnx + .json: input [batch, 5] while the sidecar declares the 12 default features: rejected.
- zipmap.onnx + .json: a classifier exported with skl2onnx's ZipMap, whose `output_probability` is a sequence of
  maps, not a tensor: rejected.
- crash-on-real.onnx + .json: a hostile model that loads, passes the warm-up (all features 1) and then kills the
  process running it on any real window: onnxruntime's own int32 Mod of INT32_MIN by -1 (a divisor that is -1 as soon
  as a feature is not 1) is a hardware SIGFPE (x86 idiv overflow), not an error status. (Div checks for zero and
  its vectorised path does not trap; Mod runs idiv element by element.) The session host crashes on it; the service
  quarantines it.
Run by export.sh after train.py (it reads the same training CSV).
"""

import argparse
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import IsolationForest
from sklearn.linear_model import LogisticRegression

from train import FEATURES, IR_VERSION, TARGET_OPSET, derive, export, load_csv


def save(model, path, sidecar=None):
    onnx.save(model, path + ".onnx")
    if sidecar is not None:
        with open(path + ".json", "w") as f:
            json.dump(sidecar, f, indent=2)
            f.write("\n")


def crash_on_real(features):
    """scores = mean(INT32_MIN mod (2 * (X == 1) - 1)): 0 for the warm-up's rows of ones, SIGFPE for any other row."""
    n = len(features)

    def const(name, dtype, value):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, dtype, [], [value]))

    nodes = [
        const("one", TensorProto.FLOAT, 1.0),
        helper.make_node("Equal", ["X", "one"], ["is_one"]),
        helper.make_node("Cast", ["is_one"], ["is_one_i"], to=TensorProto.INT32),
        const("two", TensorProto.INT32, 2),
        const("one_i", TensorProto.INT32, 1),
        helper.make_node("Mul", ["is_one_i", "two"], ["twice"]),
        helper.make_node("Sub", ["twice", "one_i"], ["divisor"]),  # 1 where X == 1, else -1
        const("int_min", TensorProto.INT32, -(2**31)),
        helper.make_node("Mod", ["int_min", "divisor"], ["rest"]),  # INT32_MIN mod -1: idiv overflow, SIGFPE
        helper.make_node("Cast", ["rest"], ["rest_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["rest_f"], ["scores"], keepdims=0, axes=[1]),
    ]
    graph = helper.make_graph(
        nodes,
        "crash_on_real",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, n])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", TARGET_OPSET[""])])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, help="fixture directory")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    x, _, y, _ = load_csv(a.data)
    x = x[np.all(np.isfinite(x), axis=1)][:20000]
    d = derive(x)

    v2 = IsolationForest(n_estimators=40, max_samples=256, random_state=2).fit(d)
    meta = {"version": "2", "features": FEATURES, "resolution": "10s", "output": "scores",
            "threshold": 0.55, "higherIsAnomalous": True}
    save(export(v2, d.shape[1], meta), os.path.join(a.out, "iforest-v2"))

    small = IsolationForest(n_estimators=5, max_samples=64, random_state=3).fit(x[:, :5])
    wrong = convert_sklearn(small, initial_types=[("X", FloatTensorType([None, 5]))], target_opset=TARGET_OPSET)
    wrong.ir_version = IR_VERSION
    save(wrong, os.path.join(a.out, "wrong-count"), {**meta, "version": "wc-1"})

    labels = (x[:, FEATURES.index("vib.max")] > np.median(x[:, FEATURES.index("vib.max")])).astype(np.int64)
    clf = LogisticRegression(max_iter=200).fit(x, labels)
    zipmap = convert_sklearn(clf, initial_types=[("X", FloatTensorType([None, len(FEATURES)]))],
                             target_opset=TARGET_OPSET)  # ZipMap is on by default
    zipmap.ir_version = IR_VERSION
    save(zipmap, os.path.join(a.out, "zipmap"), {**meta, "version": "zm-1", "output": "output_probability"})

    save(crash_on_real(FEATURES), os.path.join(a.out, "crash-on-real"), {**meta, "version": "crash-1", "threshold": 0.5})
    print(f"fixtures written to {a.out}")


if __name__ == "__main__":
    main()
