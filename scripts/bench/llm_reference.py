#!/usr/bin/env python3
"""The reference side of `services/story-llm/benches/scenes_per_minute.rs`: greedy
generation with transformers (PyTorch eager) on the same converted SmolLM2 directory, the
same prompt ids, batch sizes, token counts and CPU threads as the Rust side, in the same
run. Reads a JSON job on stdin, prints one JSON line:

    {"versions": {...}, "results": [{"batch": 1, "seconds": [...], "tokens_per_s": ...}]}

Versions: torch 2.13.0, transformers 5.23.0 (the fixture venv,
~/.cache/storyreel/fixture-venv). Run by the benchmark, not by CI.
"""
import json
import statistics
import sys
import time

import torch
import transformers
from transformers import AutoModelForCausalLM


def main() -> None:
    job = json.load(sys.stdin)
    torch.set_num_threads(job["threads"])
    model = AutoModelForCausalLM.from_pretrained(job["model_dir"], dtype=torch.float32).eval()
    new_tokens = job["new_tokens"]
    results = []
    for batch in job["batch_sizes"]:
        ids = torch.tensor([job["prompt_ids"]] * batch, dtype=torch.long)
        mask = torch.ones_like(ids)
        seconds = []
        for i in range(job["warmup"] + job["repeats"]):
            start = time.perf_counter()
            with torch.no_grad():
                out = model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=new_tokens,
                    min_new_tokens=new_tokens,
                    do_sample=False,
                    pad_token_id=0,
                )
            elapsed = time.perf_counter() - start
            assert out.shape == (batch, ids.shape[1] + new_tokens), out.shape
            if i >= job["warmup"]:
                seconds.append(elapsed)
        median = statistics.median(seconds)
        results.append({"batch": batch, "seconds": seconds, "tokens_per_s": batch * new_tokens / median})
    versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    print(json.dumps({"versions": versions, "results": results}))


if __name__ == "__main__":
    main()
