#!/usr/bin/env python3
"""Checkpoints that `backpack train` saved load in PyTorch, and compute the same logits.

Trains a tiny Backpack for a few steps with build/backpack on a small text of the
repository (a BPE of 300 tokens learnt from docs/backpack-spec.md, cut into documents),
loads the saved directory (config.json + model.safetensors, nothing else) with
bench/torch_model.py's plain PyTorch model, and compares its logits with the C model's
(tests/tool_model_refdump) on the same tokens. Independent of tests/reference.py: that
one checks a random model against the spec; this one checks what training writes.

    BACKPACK=build/backpack TOOLS=build/tests python3 tests/check_trained_checkpoint.py
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
top = os.path.dirname(here)
sys.path.insert(0, os.path.join(top, "bench"))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch_model  # noqa: E402

BACKPACK = os.environ.get("BACKPACK", os.path.join(top, "build", "backpack"))
TOOLS = os.environ.get("TOOLS", os.path.join(top, "build", "tests"))
LIMIT = 1e-4  # max |logit difference|, float32 on both sides


def run(*args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"check_trained_checkpoint: {' '.join(map(str, args[:2]))} failed:\n{r.stderr}")


def read_f32(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name != "__metadata__":
            begin, end = info["data_offsets"]
            out[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])
    return out


def main():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="bp-trained-") as work:
        # a corpus of 12 documents: the spec's paragraphs, dealt round-robin
        with open(os.path.join(top, "docs", "backpack-spec.md"), encoding="utf-8") as f:
            paragraphs = f.read().split("\n\n")
        files = []
        for i in range(12):
            path = os.path.join(work, f"doc{i}.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n\n".join(paragraphs[i::12]))
            files.append(path)
        tok, model = os.path.join(work, "tok"), os.path.join(work, "model")
        run(BACKPACK, "tokenizer", "train", "--vocab-size", 300, "--out", tok, *files)
        run(BACKPACK, "tokenize", "--tokenizer", tok, "--out", os.path.join(work, "corpus"),
            "--val-fraction", 0.25, *files)
        run(BACKPACK, "train", "--data", os.path.join(work, "corpus"), "--tokenizer", tok,
            "--out", model, "--d", 32, "--layers", 2, "--heads", 2, "--senses", 4,
            "--context", 16, "--batch", 4, "--steps", 20, "--lr", 3e-3, "--warmup", 2,
            "--eval-every", 10, "--eval-batches", 2, "--threads", 1, "--seed", 5)
        steps = [json.loads(line) for line in open(os.path.join(model, "metrics.jsonl"))]
        last = max(s["step"] for s in steps)
        assert last == 20, f"training stopped at step {last}"

        cfg, tensors = torch_model.load_checkpoint(model)
        assert cfg["model_type"] == "backpack-gpt2", cfg["model_type"]
        m = torch_model.Backpack(cfg, tensors)
        # training moved the weights away from the spec's initialization
        ln_w = tensors["backpack.gpt2_model.ln_f.weight"]
        assert float((ln_w - 1).abs().max()) > 1e-3, "ln_f.weight still 1: not trained"

        B, T = 2, cfg["n_positions"]
        x = torch.randint(0, cfg["vocab_size"], (B, T))
        y = torch.randint(0, cfg["vocab_size"], (B, T))
        batch = os.path.join(work, "batch.txt")
        with open(batch, "w") as f:
            f.write(f"{B} {T}\n" + " ".join(map(str, x.flatten().tolist())) + "\n"
                    + " ".join(map(str, y.flatten().tolist())) + "\n")
        dump = os.path.join(work, "c.safetensors")
        run(os.path.join(TOOLS, "tool_model_refdump"), model, batch, dump)
        c_logits = torch.from_numpy(read_f32(dump)["logits"].copy())
        with torch.no_grad():
            t_logits = m(x)
        diff = float((t_logits - c_logits).abs().max())
        scale = float(t_logits.abs().max())
        print(f"trained checkpoint in PyTorch: step {last}, V {cfg['vocab_size']}, "
              f"max |logits| {scale:.3f}, max |C - PyTorch| {diff:.2e} (limit {LIMIT:g})")
        if not diff <= LIMIT:
            sys.exit("check_trained_checkpoint: logits differ")


if __name__ == "__main__":
    main()
