#!/usr/bin/env python3
"""The reference side of `services/tts/benches/rtf.rs`: onnxruntime running the Piper
voice's ONNX export (en_US-joe-medium.onnx, kept by `make models`) on the same phoneme ids,
scales and CPU threads as the Rust side, in the same run. Reads a JSON job on stdin, prints
one JSON line:

    {"versions": {...}, "seconds": [...], "audio_seconds": ...}

where each entry of "seconds" is one pass over all utterances. Versions: onnxruntime
1.23.2, numpy 2.4.6 (pip install them into the fixture venv,
~/.cache/storyreel/fixture-venv). Run by the benchmark, not by CI.
"""
import json
import sys
import time

import numpy as np
import onnxruntime


def main() -> None:
    job = json.load(sys.stdin)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = job["threads"]
    options.inter_op_num_threads = 1
    # as libtorch's OpenMP threads under OMP_WAIT_POLICY=PASSIVE: idle threads sleep
    # instead of spinning (the fair setting on a shared machine)
    if not job.get("spinning", True):
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(job["onnx"], sess_options=options, providers=["CPUExecutionProvider"])
    scales = np.array(job["scales"], dtype=np.float32)

    def run_all() -> int:
        samples = 0
        for ids in job["utterances"]:
            audio = session.run(None, {
                "input": np.array([ids], dtype=np.int64),
                "input_lengths": np.array([len(ids)], dtype=np.int64),
                "scales": scales,
            })[0]
            samples += audio.size
        return samples

    for _ in range(job["warmup"]):
        run_all()
    seconds = []
    samples = 0
    for _ in range(job["repeats"]):
        start = time.perf_counter()
        samples = run_all()
        seconds.append(time.perf_counter() - start)
    print(json.dumps({
        "versions": {"onnxruntime": onnxruntime.__version__, "numpy": np.__version__},
        "seconds": seconds,
        "audio_seconds": samples / job["sample_rate"],
    }))


if __name__ == "__main__":
    main()
