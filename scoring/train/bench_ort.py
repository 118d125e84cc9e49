"""Python onnxruntime side of bench/src/scoring.ts: scores/s of one model at the given batch sizes, same thread
settings as the service (intra-op 1, inter-op 1, sequential). Prints one JSON object: {"ort": ver, "results": [...]},
each result with scores/s and the process's CPU time per score (microseconds).

    python bench_ort.py --model scoring/models/iforest.onnx --batches 1,64,1024 --seconds 3
"""

import argparse
import json
import time

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batches", default="1,64,1024")
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--input", help="raw float32 file of rows to score (cycled); default: uniform [0, 1)")
    a = ap.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    width = inp.shape[1]
    if a.input:
        pool = np.fromfile(a.input, dtype=np.float32).reshape(-1, width)
    else:
        pool = np.random.default_rng(1).random((4096, width), dtype=np.float32)
    out_name = "scores" if "scores" in [o.name for o in sess.get_outputs()] else sess.get_outputs()[0].name
    results = []
    for b in [int(s) for s in a.batches.split(",")]:
        # The pool cut into consecutive batches, run in turn: the rows differ from run to run, as the service's do
        # (it scores a step's 2,048 different rows); the same batch every run would be a cache-warm best case.
        reps = int(np.ceil(b / len(pool)))
        cycle = np.tile(pool, (reps, 1)) if reps > 1 else pool
        batches = [np.ascontiguousarray(cycle[i : i + b]) for i in range(0, len(cycle) - b + 1, b)]
        for i in range(20):
            sess.run([out_name], {inp.name: batches[i % len(batches)]})
        n = 0
        t0 = time.perf_counter()
        c0 = time.process_time()
        deadline = t0 + a.seconds
        while True:
            sess.run([out_name], {inp.name: batches[n % len(batches)]})
            n += 1
            if n % 8 == 0 and time.perf_counter() >= deadline:
                break
        dt = time.perf_counter() - t0
        # CPU time (all threads of the process) per score: steadier than scores/s on a shared machine.
        cpu_us = (time.process_time() - c0) * 1e6 / (n * b)
        results.append({"batch": b, "runs": n, "scoresPerSec": n * b / dt, "cpuUsPerScore": cpu_us})
    print(json.dumps({"ort": ort.__version__, "results": results}))


if __name__ == "__main__":
    main()
