#!/usr/bin/env python3
"""The PyTorch side of the benchmark (bench/run.sh): the Backpack LM of
docs/backpack-spec.md written as ordinary, efficient PyTorch, the way the published
training code runs it (float32, fused library ops, the sense network applied at every
position as in the Hugging Face BackpackGPT2 code), plus a cached generation path.

    torch_model.py train --dir DIR [--batch B] [--warmup W] [--steps M] [--threads T]
                         [--unique-senses]
    torch_model.py generate --dir DIR [--new N] [--runs R] [--threads T]
    torch_model.py selftest            cached generation == full forward; the model ==
                                       tests/reference.py's independent forward

DIR is made by `tool_train_bench prepare` (tests/tool_train_bench.c): DIR/model is a
checkpoint (config.json + model.safetensors, the spec's tensor names) and
DIR/tokens.bin holds int32 batches of B windows of T+1 tokens. Both sides load the same
weights and data, so their losses must agree (the benchmark prints both).

A training step = forward, mean cross-entropy, backward, gradient clipping at 1.0 and
torch.optim.AdamW (lr 6e-4, betas (0.9, 0.999), eps 1e-8, weight decay 0.1 on the
matrices only, foreach implementation), without dropout: the same work as the C side.
Generation: batch 1, greedy (argmax, lowest id on ties), feeding the prompt token 0,
with key/value caches of every layer, a cache of the sense-weight keys and a cache of
the context's sense vectors, so each token costs O(context).

Both commands print one JSON line, like the C tool.
"""
import json
import math
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def peak_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# ------------------------------------------------------------------------------------
# checkpoint: config.json + safetensors (8-byte header length, JSON header, data)

def read_safetensors(path):
    """Reads each tensor straight into its own array (no second copy of the file)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dt = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        arr = np.fromfile(path, dtype=dt, count=(end - begin) // dt.itemsize, offset=8 + n + begin)
        out[name] = torch.from_numpy(arr.astype(np.float32, copy=False).reshape(info["shape"]))
    return out


def load_checkpoint(dirname):
    with open(os.path.join(dirname, "config.json")) as f:
        cfg = json.load(f)
    return cfg, read_safetensors(os.path.join(dirname, "model.safetensors"))


# ------------------------------------------------------------------------------------
# the model

G = "backpack.gpt2_model"
S = "backpack.sense_network"
W = "backpack.sense_weight_net"


def gelu(x):
    return F.gelu(x, approximate="tanh")


class Backpack(torch.nn.Module):
    """The spec's model. Parameters are kept under their checkpoint names (with '.'
    replaced by '/'): p(name) returns one."""

    def __init__(self, cfg, tensors, unique_senses=False):
        super().__init__()
        self.V, self.d = cfg["vocab_size"], cfg["n_embd"]
        self.L, self.H, self.k = cfg["n_layer"], cfg["n_head"], cfg["num_senses"]
        self.unique_senses = unique_senses
        self.params = torch.nn.ParameterDict(
            {n.replace(".", "/"): torch.nn.Parameter(t) for n, t in tensors.items()
             if n.startswith(("backpack.gpt2_model.", "backpack.sense_"))
             and not n.endswith((".attn.bias", ".attn.masked_bias"))})
        # plain lookups by checkpoint name (ParameterDict access is slow per call)
        self.by_name = {n.replace("/", "."): t for n, t in self.params.items()}

    def p(self, name):
        return self.by_name[name]

    def decayed(self, name):
        """AdamW weight decay: matrices only (not biases, LayerNorms, embeddings)."""
        n = name.replace("/", ".")
        return n.endswith("weight") and self.params[name].dim() == 2 and \
            not n.endswith(("wte.weight", "wpe.weight"))

    def ln(self, x, prefix):
        return F.layer_norm(x, (self.d,), self.p(prefix + ".weight"), self.p(prefix + ".bias"), 1e-5)

    def conv1d(self, x, prefix):
        """Hugging Face Conv1D: y = x W + b, W stored [in, out]."""
        w, b = self.p(prefix + ".weight"), self.p(prefix + ".bias")
        return torch.addmm(b, x.reshape(-1, w.shape[0]), w).reshape(*x.shape[:-1], w.shape[1])

    def senses(self, e):
        """The sense network on word embeddings e (..., d) -> (..., k, d)."""
        r1 = e + self.ln(e, f"{S}.ln")
        r2 = r1 + self.conv1d(gelu(self.conv1d(self.ln(r1, f"{S}.block.ln_1"), f"{S}.block.mlp.c_fc")),
                              f"{S}.block.mlp.c_proj")
        c = self.conv1d(gelu(self.conv1d(self.ln(r2, f"{S}.block.ln_2"), f"{S}.final_mlp.c_fc")),
                        f"{S}.final_mlp.c_proj")
        return c.reshape(*e.shape[:-1], self.k, self.d)

    def block(self, X, l, causal_neg):
        B, T, d, H = X.shape[0], X.shape[1], self.d, self.H
        dh = d // H
        h = f"{G}.h.{l}"
        qkv = self.conv1d(self.ln(X, h + ".ln_1"), h + ".attn.c_attn")
        q, k, v = qkv.split(d, dim=-1)
        q = q.reshape(B, T, H, dh).transpose(1, 2)
        k = k.reshape(B, T, H, dh).transpose(1, 2)
        v = v.reshape(B, T, H, dh).transpose(1, 2)
        scores = torch.baddbmm(causal_neg.expand(B * H, T, T), q.reshape(B * H, T, dh),
                               k.reshape(B * H, T, dh).transpose(1, 2),
                               alpha=1.0 / (math.sqrt(dh) * (l + 1)))
        y = torch.bmm(torch.softmax(scores, dim=-1), v.reshape(B * H, T, dh))
        y = y.reshape(B, H, T, dh).transpose(1, 2).reshape(B, T, d)
        X = X + self.conv1d(y, h + ".attn.c_proj")
        X = X + self.conv1d(gelu(self.conv1d(self.ln(X, h + ".ln_2"), h + ".mlp.c_fc")),
                            h + ".mlp.c_proj")
        return X

    def forward(self, x):
        """x (B, T) int64 -> logits (B, T, V)."""
        B, T = x.shape
        d, k = self.d, self.k
        dk = d // k
        E = self.p(f"{G}.wte.weight")
        upper = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        causal_neg = torch.zeros(T, T).masked_fill(upper, float("-inf"))
        # 1. contextualization transformer
        X = F.embedding(x, E) + self.p(f"{G}.wpe.weight")[:T]
        for l in range(self.L):
            X = self.block(X, l, causal_neg)
        h = self.ln(X, f"{G}.ln_f")
        # 2. sense network (per position, as the published code; or per distinct word)
        if self.unique_senses:
            words, inverse = torch.unique(x, return_inverse=True)
            C = self.senses(F.embedding(words, E))[inverse]          # (B, T, k, d)
        else:
            C = self.senses(F.embedding(x, E))                       # (B, T, k, d)
        # 3. sense weights
        Z = F.linear(h, self.p(f"{W}.c_attn.weight"), self.p(f"{W}.c_attn.bias"))
        Q = Z[..., :d].reshape(B, T, k, dk).transpose(1, 2).reshape(B * k, T, dk)
        K = Z[..., d:].reshape(B, T, k, dk).transpose(1, 2).reshape(B * k, T, dk)
        mask = torch.zeros(T, T).masked_fill(upper, -10000.0)
        alpha = torch.softmax(torch.baddbmm(mask.expand(B * k, T, T), Q, K.transpose(1, 2),
                                            alpha=1.0 / math.sqrt(dk)), dim=-1)
        # 4. mixing: o_i = sum_l sum_j alpha_l[i, j] C(x_j)_l, then the tied output
        Cs = C.transpose(1, 2).reshape(B * k, T, d)
        o = torch.bmm(alpha, Cs).reshape(B, k, T, d).sum(dim=1)        # (B, T, d)
        return o @ E.t()

    # --------------------------------------------------------------------------------
    # cached generation, batch 1

    @torch.no_grad()
    def generate(self, first, n):
        """Greedy: feed `first`, then n - 1 chosen tokens; returns the n chosen ids."""
        d, k, H, L = self.d, self.k, self.H, self.L
        dh, dk = d // H, d // k
        E, P = self.p(f"{G}.wte.weight"), self.p(f"{G}.wpe.weight")
        kc = torch.empty(L, H, n, dh)
        vc = torch.empty(L, H, n, dh)
        sense_keys = torch.empty(k, n, dk)
        sense_vecs = torch.empty(k, n, d)
        Wc, bc = self.p(f"{W}.c_attn.weight"), self.p(f"{W}.c_attn.bias")
        out, tok = [], first
        for t in range(n):
            x = (E[tok] + P[t]).unsqueeze(0)                                # (1, d)
            for l in range(L):
                h = f"{G}.h.{l}"
                qkv = self.conv1d(self.ln(x, h + ".ln_1"), h + ".attn.c_attn")[0]
                q, kk, v = qkv.split(d)
                kc[l, :, t] = kk.reshape(H, dh)
                vc[l, :, t] = v.reshape(H, dh)
                s = torch.bmm(kc[l, :, :t + 1], q.reshape(H, dh, 1)).squeeze(2)
                a = torch.softmax(s * (1.0 / (math.sqrt(dh) * (l + 1))), dim=-1)  # (H, t+1)
                y = torch.bmm(a.unsqueeze(1), vc[l, :, :t + 1]).reshape(1, d)
                x = x + self.conv1d(y, h + ".attn.c_proj")
                x = x + self.conv1d(gelu(self.conv1d(self.ln(x, h + ".ln_2"), h + ".mlp.c_fc")),
                                    h + ".mlp.c_proj")
            hl = self.ln(x, f"{G}.ln_f")
            z = F.linear(hl, Wc, bc)[0]
            sense_keys[:, t] = z[d:].reshape(k, dk)
            sense_vecs[:, t] = self.senses(E[tok].unsqueeze(0))[0]           # (k, d)
            s = torch.bmm(sense_keys[:, :t + 1], z[:d].reshape(k, dk, 1)).squeeze(2)
            alpha = torch.softmax(s * (1.0 / math.sqrt(dk)), dim=-1)         # (k, t+1)
            o = torch.bmm(alpha.unsqueeze(1), sense_vecs[:, :t + 1]).sum(dim=0)  # (1, d)
            logits = torch.mv(E, o[0])
            tok = int(torch.argmax(logits))
            out.append(tok)
        return out


# ------------------------------------------------------------------------------------

def load_tokens(dirname, B, T):
    toks = np.fromfile(os.path.join(dirname, "tokens.bin"), dtype="<i4").astype(np.int64)
    per = B * (T + 1)
    nb = len(toks) // per
    if nb < 1:
        sys.exit("torch_model.py: tokens.bin holds less than one batch")
    w = torch.from_numpy(toks[:nb * per].reshape(nb, B, T + 1))
    return [(w[i, :, :T].contiguous(), w[i, :, 1:].contiguous()) for i in range(nb)]


def set_threads(n):
    torch.set_num_threads(n)


def blas_core():
    """The OpenBLAS kernel set torch's BLAS runs (the library it has loaded)."""
    try:
        import ctypes
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "?"


def cmd_train(args):
    cfg, tensors = load_checkpoint(os.path.join(args["dir"], "model"))
    model = Backpack(cfg, tensors, unique_senses=args["unique"])
    T = cfg["n_positions"]
    B = args["batch"]
    batches = load_tokens(args["dir"], B, T)
    names = list(model.params.keys())
    decay = [model.params[n] for n in names if model.decayed(n)]
    rest = [model.params[n] for n in names if not model.decayed(n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": rest, "weight_decay": 0.0}],
                            lr=6e-4, betas=(0.9, 0.999), eps=1e-8, foreach=True)
    params = list(model.parameters())
    total = args["warmup"] + args["steps"]
    secs, losses, cpu = [], [], 0.0
    for s in range(total):
        x, y = batches[s % len(batches)]
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, model.V), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        secs.append(time.perf_counter() - t0)
        if s >= args["warmup"]:
            cpu += time.process_time() - c0
        del logits, loss
    timed = sum(secs[args["warmup"]:])
    print(json.dumps({"tokens_per_s": round(B * T * args["steps"] / timed, 2),
                      "cpu_seconds_per_step": round(cpu / args["steps"], 4),
                      "threads": torch.get_num_threads(), "blas_core": blas_core(),
                      "peak_rss_kib": peak_rss_kib(),
                      "step_seconds": [round(v, 4) for v in secs],
                      "losses": [round(v, 6) for v in losses], "warmup": args["warmup"]}))


def cmd_generate(args):
    cfg, tensors = load_checkpoint(os.path.join(args["dir"], "model"))
    model = Backpack(cfg, tensors)
    n = args["new"]
    rates, toks, cpu = [], None, 0.0
    for r in range(args["runs"] + 1):  # run 0 warms up
        t0, c0 = time.perf_counter(), time.process_time()
        toks = model.generate(0, n)
        dt = time.perf_counter() - t0
        if r > 0:
            rates.append(n / dt)
            cpu += time.process_time() - c0
    print(json.dumps({"tokens_per_s": [round(v, 2) for v in rates],
                      "cpu_seconds_per_token": round(cpu / (n * args["runs"]), 5),
                      "median_tokens_per_s": round(sorted(rates)[len(rates) // 2], 2),
                      "peak_rss_kib": peak_rss_kib(), "tokens": toks}))


def cmd_selftest():
    """Checks that the benchmark's model is the spec's: against tests/reference.py's
    independent forward (float64) on a random model, and cached generation against
    greedy decoding with full forwards."""
    torch.manual_seed(0)
    cfg = dict(vocab_size=53, n_embd=32, n_layer=3, n_head=4, num_senses=4, n_positions=24)
    d, V, L, k, S4 = 32, 53, 3, 4, 128
    shapes = {f"{G}.wte.weight": (V, d), f"{G}.wpe.weight": (24, d),
              f"{G}.ln_f.weight": (d,), f"{G}.ln_f.bias": (d,)}
    for l in range(L):
        h = f"{G}.h.{l}"
        shapes.update({f"{h}.ln_1.weight": (d,), f"{h}.ln_1.bias": (d,),
                       f"{h}.attn.c_attn.weight": (d, 3 * d), f"{h}.attn.c_attn.bias": (3 * d,),
                       f"{h}.attn.c_proj.weight": (d, d), f"{h}.attn.c_proj.bias": (d,),
                       f"{h}.ln_2.weight": (d,), f"{h}.ln_2.bias": (d,),
                       f"{h}.mlp.c_fc.weight": (d, 4 * d), f"{h}.mlp.c_fc.bias": (4 * d,),
                       f"{h}.mlp.c_proj.weight": (4 * d, d), f"{h}.mlp.c_proj.bias": (d,)})
    shapes.update({f"{S}.ln.weight": (d,), f"{S}.ln.bias": (d,),
                   f"{S}.block.ln_1.weight": (d,), f"{S}.block.ln_1.bias": (d,),
                   f"{S}.block.mlp.c_fc.weight": (d, S4), f"{S}.block.mlp.c_fc.bias": (S4,),
                   f"{S}.block.mlp.c_proj.weight": (S4, d), f"{S}.block.mlp.c_proj.bias": (d,),
                   f"{S}.block.ln_2.weight": (d,), f"{S}.block.ln_2.bias": (d,),
                   f"{S}.final_mlp.c_fc.weight": (d, S4), f"{S}.final_mlp.c_fc.bias": (S4,),
                   f"{S}.final_mlp.c_proj.weight": (S4, k * d),
                   f"{S}.final_mlp.c_proj.bias": (k * d,),
                   f"{W}.c_attn.weight": (2 * d, d), f"{W}.c_attn.bias": (2 * d,)})
    tensors = {}
    for n, shp in shapes.items():
        if n.endswith("ln_1.weight") or n.endswith("ln_2.weight") or n.endswith("ln_f.weight") \
                or n.endswith("ln.weight"):
            tensors[n] = 1 + 0.2 * torch.randn(shp)
        elif n.endswith("bias"):
            tensors[n] = 0.1 * torch.randn(shp)
        elif n.endswith(("wte.weight", "wpe.weight")):
            tensors[n] = 0.5 * torch.randn(shp)
        else:
            tensors[n] = torch.randn(shp) * (0.8 / math.sqrt(shp[0]))
    ok = True
    model = Backpack(cfg, {n: t.clone() for n, t in tensors.items()})
    model_u = Backpack(cfg, {n: t.clone() for n, t in tensors.items()}, unique_senses=True)
    x = torch.randint(0, V // 2, (2, 20))
    with torch.no_grad():
        logits = model(x)
        du = (model_u(x) - logits).abs().max().item()
    print(f"unique-senses path vs per-position: max |diff| {du:.2e}")
    ok &= du < 1e-5
    # against the independent reference, when present
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "tests"))
    try:
        import reference
        reference.CFG.update(V=V, d=d, L=L, H=4, k=k, P=24, scale=4)
        P64 = {n: t.double() for n, t in tensors.items()}
        ref_logits, _ = reference.reference_forward("backpack", P64, x, x)
        dr = (ref_logits - logits.double()).abs().max().item()
        print(f"vs tests/reference.py (float64): max |logits diff| {dr:.2e}")
        ok &= dr < 1e-4
    except ImportError as e:
        print(f"tests/reference.py not usable ({e}); skipped that comparison")
    # cached greedy generation vs full forwards
    n = 20
    gen = model.generate(0, n)
    seq, full = [0], []
    with torch.no_grad():
        for _ in range(n):
            full.append(int(torch.argmax(model(torch.tensor([seq]))[0, -1])))
            seq.append(full[-1])
    print(f"cached greedy tokens {'==' if gen == full else '!='} full-forward greedy tokens")
    ok &= gen == full
    print("selftest:", "ok" if ok else "FAILED")
    return 0 if ok else 1


def main(argv):
    if len(argv) < 2 or argv[1] not in ("train", "generate", "selftest"):
        print(__doc__, file=sys.stderr)
        return 2
    args = {"dir": None, "batch": 8, "warmup": 2, "steps": 5, "threads": 2, "new": 256,
            "runs": 3, "unique": False}
    i = 2
    while i < len(argv):
        a = argv[i]
        if a == "--unique-senses":
            args["unique"] = True
            i += 1
            continue
        key = a.lstrip("-")
        if key not in args or i + 1 >= len(argv):
            print(f"torch_model.py: bad option {a}", file=sys.stderr)
            return 2
        args[key] = argv[i + 1] if key == "dir" else int(argv[i + 1])
        i += 2
    set_threads(args["threads"])
    if argv[1] == "selftest":
        return cmd_selftest()
    if not args["dir"]:
        print("torch_model.py: --dir DIR is required", file=sys.stderr)
        return 2
    if argv[1] == "train":
        cmd_train(args)
    else:
        cmd_generate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
