#!/usr/bin/env python3
"""An independent PyTorch implementation of the Backpack LM and its Transformer
baseline, written from docs/backpack-spec.md (not from the C code), checked against
the C model.

For each architecture, and each attention variant (docs/synthesizer.md: dot-product,
the Synthesizer's dense, random, fixed random, factorized dense, factorized random and
mixtures of them), it draws a random model, writes it as a checkpoint directory
(config.json + model.safetensors, with this file's own safetensors writer), runs
$TOOLS/tool_model_refdump on it and one batch (the C model: logits, mean loss and the
gradient of every checkpoint tensor), reads that back with this file's own safetensors
parser, computes the same in PyTorch in float64 with autograd, and prints the max abs
differences. Fails (exit 1) when

    max |logits diff| > 1e-4,  |loss diff| > 1e-5,  or for any tensor
    max |grad diff| > 1e-4 * max |grad| + 1e-7     (float32 accumulation vs float64);
    the fixed random table's gradient must be exactly 0 (it is never trained).

Layer plans (docs/layer-plans.md): the same model's logits under a skip, a repeat, a
parallel group and a loop, with this file's own plan parser and tree walk, against
tool_model_refdump's with the plan (logits only: no backward under a plan). The
no-last-residual flag (config key no_last_residual): logits, loss and gradients.

Run by `make check-reference` (TOOLS = the build's tests/ directory).
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

LOGITS_TOL = 1e-4
LOSS_TOL = 1e-5
GRAD_REL_TOL = 1e-4
GRAD_ABS_TOL = 1e-7

# The configuration checked: big enough for every axis to matter (several heads, senses,
# layers, repeated words), small enough to run in seconds.
CFG = dict(V=67, d=32, L=3, H=4, k=4, P=16, scale=4)
B, T = 3, 16
# The Synthesizer variants are checked on sequences shorter than the tables (T < P),
# so that the top-left block rule matters: T_SYNTH tokens, P = 16.
T_SYNTH = 13

# Attention kinds, in the order of docs/synthesizer.md (the mixture weights' columns).
KINDS = ["dot", "dense", "random", "fixed-random", "factorized-dense", "factorized-random"]
VARIANTS = KINDS + ["mix:random+dot", "mix:dense+factorized-random",
                    "mix:fixed-random+factorized-dense+dot"]
SYNTH_RANK = 8


def attention_kinds(variant):
    parts = variant[4:].split("+") if variant.startswith("mix:") else [variant]
    return sorted(parts, key=KINDS.index)


def factor_a(n):
    """The largest divisor a of n with a * a <= n (factorized dense: a b = n)."""
    return max(x for x in range(1, int(math.isqrt(n)) + 1) if n % x == 0)


# ------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, data section

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64,
          "I32": np.int32, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = arr.reshape(info["shape"]).copy()
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    hb = json.dumps(header).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)


# ------------------------------------------------------------------------------------
# the model's tensors, by their Hugging Face names (spec, "Checkpoint tensor names")

def tensor_shapes(arch, variant="dot"):
    V, d, L, k, P, S = CFG["V"], CFG["d"], CFG["L"], CFG["k"], CFG["P"], CFG["scale"] * CFG["d"]
    H, n = CFG["H"], CFG["P"]
    kinds = attention_kinds(variant)
    qkv = 3 * d if "dot" in kinds else d  # without dot-product attention: values only
    a = factor_a(n)
    b, r = n // a, min(SYNTH_RANK, n)
    g = "backpack.gpt2_model" if arch == "backpack" else "transformer"
    shapes = {f"{g}.wte.weight": (V, d), f"{g}.wpe.weight": (P, d)}
    for l in range(L):
        h = f"{g}.h.{l}"
        if "dense" in kinds:
            s = f"{h}.attn.dense_synthesizer"
            shapes.update({f"{s}.c_fc.weight": (d, d), f"{s}.c_fc.bias": (d,),
                           f"{s}.c_proj.weight": (d, n), f"{s}.c_proj.bias": (H, n)})
        if "random" in kinds:
            shapes[f"{h}.attn.random_synthesizer.weight"] = (H * n, n)
        if "fixed-random" in kinds:
            shapes[f"{h}.attn.fixed_random_synthesizer.weight"] = (H * n, n)
        if "factorized-dense" in kinds:
            s = f"{h}.attn.factorized_dense_synthesizer"
            shapes.update({f"{s}.c_fc.weight": (d, d), f"{s}.c_fc.bias": (d,),
                           f"{s}.c_proj_a.weight": (d, a), f"{s}.c_proj_a.bias": (H, a),
                           f"{s}.c_proj_b.weight": (d, b), f"{s}.c_proj_b.bias": (H, b)})
        if "factorized-random" in kinds:
            s = f"{h}.attn.factorized_random_synthesizer"
            shapes.update({f"{s}.r_1": (H * n, r), f"{s}.r_2": (H * n, r)})
        if len(kinds) > 1:
            shapes[f"{h}.attn.mixture.weight"] = (H, len(kinds))
        shapes.update({
            f"{h}.ln_1.weight": (d,), f"{h}.ln_1.bias": (d,),
            f"{h}.attn.c_attn.weight": (d, qkv), f"{h}.attn.c_attn.bias": (qkv,),
            f"{h}.attn.c_proj.weight": (d, d), f"{h}.attn.c_proj.bias": (d,),
            f"{h}.ln_2.weight": (d,), f"{h}.ln_2.bias": (d,),
            f"{h}.mlp.c_fc.weight": (d, 4 * d), f"{h}.mlp.c_fc.bias": (4 * d,),
            f"{h}.mlp.c_proj.weight": (4 * d, d), f"{h}.mlp.c_proj.bias": (d,)})
    shapes.update({f"{g}.ln_f.weight": (d,), f"{g}.ln_f.bias": (d,)})
    if arch == "backpack":
        s = "backpack.sense_network"
        shapes.update({
            f"{s}.ln.weight": (d,), f"{s}.ln.bias": (d,),
            f"{s}.block.ln_1.weight": (d,), f"{s}.block.ln_1.bias": (d,),
            f"{s}.block.mlp.c_fc.weight": (d, S), f"{s}.block.mlp.c_fc.bias": (S,),
            f"{s}.block.mlp.c_proj.weight": (S, d), f"{s}.block.mlp.c_proj.bias": (d,),
            f"{s}.block.ln_2.weight": (d,), f"{s}.block.ln_2.bias": (d,),
            f"{s}.final_mlp.c_fc.weight": (d, S), f"{s}.final_mlp.c_fc.bias": (S,),
            f"{s}.final_mlp.c_proj.weight": (S, k * d), f"{s}.final_mlp.c_proj.bias": (k * d,),
            "backpack.sense_weight_net.c_attn.weight": (2 * d, d),
            "backpack.sense_weight_net.c_attn.bias": (2 * d,)})
    return shapes


def random_params(arch, rng, variant="dot"):
    """Larger than the training init so that every nonlinearity is exercised."""
    params = {}
    for name, shape in tensor_shapes(arch, variant).items():
        if name.endswith(("random_synthesizer.weight", "mixture.weight")):
            x = rng.standard_normal(shape)  # score tables and mixture logits of order 1
        elif name.endswith((".r_1", ".r_2")):
            x = 0.5 * rng.standard_normal(shape)
        elif name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight", "ln.weight")):
            x = 1.0 + 0.2 * rng.standard_normal(shape)
        elif name.endswith("bias"):
            x = 0.1 * rng.standard_normal(shape)
        elif name.endswith(("wte.weight", "wpe.weight")):
            x = 0.5 * rng.standard_normal(shape)
        else:
            x = rng.standard_normal(shape) / math.sqrt(shape[0] if len(shape) == 2 else 1) * 0.8
        params[name] = x.astype(np.float32)
    return params


def write_checkpoint(dirname, arch, params, variant="dot", no_last_residual=False):
    config = {
        "model_type": "backpack-gpt2" if arch == "backpack" else "gpt2",
        "n_embd": CFG["d"], "n_layer": CFG["L"], "n_head": CFG["H"],
        "n_positions": CFG["P"], "vocab_size": CFG["V"],
        "layer_norm_epsilon": 1e-5, "scale_attn_by_inverse_layer_idx": True,
        "activation_function": "gelu_new",
    }
    if arch == "backpack":
        config.update({"num_senses": CFG["k"], "sense_intermediate_scale": CFG["scale"]})
    else:
        config["tie_word_embeddings"] = True
    if variant != "dot":
        config["attention"] = variant
    if no_last_residual:
        config["no_last_residual"] = True
    os.makedirs(dirname, exist_ok=True)
    with open(os.path.join(dirname, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    write_safetensors(os.path.join(dirname, "model.safetensors"), params)


# ------------------------------------------------------------------------------------
# the computation of the spec, in PyTorch

def layer_norm(x, w, b):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased
    return (x - mean) / torch.sqrt(var + 1e-5) * w + b


def gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


# ------------------------------------------------------------------------------------
# layer plans (docs/layer-plans.md): "0,1,2+3,(4+5)*3,7"; `*` binds tighter than `+`

def parse_plan(text, L):
    """A tree: ("block", l) | ("seq", [..]) | ("par", [..]) | ("loop", node, r)."""
    pos = 0

    def peek():
        nonlocal pos
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        return text[pos] if pos < len(text) else ""

    def number():
        nonlocal pos
        start = pos
        while pos < len(text) and text[pos].isdigit():
            pos += 1
        if start == pos:
            raise ValueError(f"{text!r}: a number expected at {start + 1}")
        return int(text[start:pos])

    def atom():
        nonlocal pos
        c = peek()
        if c.isdigit():
            l = number()
            if l >= L:
                raise ValueError(f"{text!r}: block {l} >= {L}")
            return ("block", l)
        if c == "(":
            pos += 1
            inner = seq()
            if peek() != ")":
                raise ValueError(f"{text!r}: ')' expected at {pos + 1}")
            pos += 1
            return inner
        raise ValueError(f"{text!r}: empty step or bad character at {pos + 1}")

    def term():
        nonlocal pos
        node = atom()
        while peek() == "*":
            pos += 1
            peek()
            node = ("loop", node, number())
        return node

    def par():
        nonlocal pos
        items = [term()]
        while peek() == "+":
            pos += 1
            items.append(term())
        return items[0] if len(items) == 1 else ("par", items)

    def seq():
        nonlocal pos
        items = [par()]
        while peek() == ",":
            pos += 1
            items.append(par())
        return items[0] if len(items) == 1 else ("seq", items)

    tree = seq()
    if peek():
        raise ValueError(f"{text!r}: unexpected {text[pos]!r} at {pos + 1}")
    return tree


def walk_plan(node, h):
    """Generator: yields (block, input) for every block run, receives its output;
    returns the plan's output. A parallel group averages its branches' outputs."""
    kind = node[0]
    if kind == "block":
        return (yield (node[1], h))
    if kind == "seq":
        for child in node[1]:
            h = yield from walk_plan(child, h)
        return h
    if kind == "loop":
        for _ in range(node[2]):
            h = yield from walk_plan(node[1], h)
        return h
    outs = []
    for child in node[1]:
        outs.append((yield from walk_plan(child, h)))
    return torch.stack(outs).mean(0)


class PlanRun:
    """for l in run: X = run.h; ...block l...; run.out = X  -- then run.h is the output."""

    def __init__(self, tree, h):
        self.gen, self.h, self.out = walk_plan(tree, h), None, None

    def __iter__(self):
        step = next(self.gen)
        while True:
            l, self.h = step
            yield l
            try:
                step = self.gen.send(self.out)
            except StopIteration as done:
                self.h = done.value
                return


def reference_forward(arch, P, x, y, variant="dot", plan=None, no_last_residual=False):
    """x, y: (B, T) int64. Returns logits (B, T, V) and the mean cross-entropy. plan: a
    layer plan's text (None: blocks 0..L-1); no_last_residual: block L-1 outputs its MLP
    branch without the residual around it; variant: the attention (docs/synthesizer.md)."""
    V, d, L, H, k, n = CFG["V"], CFG["d"], CFG["L"], CFG["H"], CFG["k"], CFG["P"]
    kinds = attention_kinds(variant)
    Bn, Tn = x.shape
    g = "backpack.gpt2_model" if arch == "backpack" else "transformer"
    E = P[f"{g}.wte.weight"]
    causal = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))

    # 1. contextualization transformer
    X = E[x] + P[f"{g}.wpe.weight"][:Tn]
    dh = d // H
    run = PlanRun(parse_plan(plan or ",".join(map(str, range(L))), L), X)
    for l in run:
        X = run.h
        p = lambda s: P[f"{g}.h.{l}.{s}"]
        A = layer_norm(X, p("ln_1.weight"), p("ln_1.bias"))
        qkv = A @ p("attn.c_attn.weight") + p("attn.c_attn.bias")
        heads = lambda t: t.reshape(Bn, Tn, H, dh).transpose(1, 2)  # (B, H, T, dh)
        if "dot" in kinds:
            q, kk, v = (heads(t) for t in qkv.split(d, dim=-1))
        else:
            v = heads(qkv)
        scores = []  # (B or 1, H, T, T) per kind, in KINDS order
        for kind in kinds:
            if kind == "dot":
                scores.append(q @ kk.transpose(-1, -2) / math.sqrt(dh) / (l + 1))
            elif kind in ("dense", "factorized-dense"):
                s = "dense_synthesizer" if kind == "dense" else "factorized_dense_synthesizer"
                hid = heads(torch.relu(A @ p(f"attn.{s}.c_fc.weight") + p(f"attn.{s}.c_fc.bias")))
                per_head = lambda w: w.reshape(H, dh, -1)                # rows of head h
                if kind == "dense":
                    W2 = per_head(p(f"attn.{s}.c_proj.weight"))[:, :, :Tn]
                    scores.append(hid @ W2 + p(f"attn.{s}.c_proj.bias")[:, None, :Tn])
                else:
                    head_out = lambda w: hid @ per_head(p(f"attn.{s}.{w}.weight")) \
                        + p(f"attn.{s}.{w}.bias")[:, None, :]
                    B1, B2 = head_out("c_proj_a"), head_out("c_proj_b")
                    # column j = a_i b_i' pairs B_1[j // b] B_2[j % b]: the outer product, flattened
                    outer = (B1[..., :, None] * B2[..., None, :]).reshape(Bn, H, Tn, -1)
                    scores.append(outer[..., :Tn])
            elif kind in ("random", "fixed-random"):
                s = "random_synthesizer" if kind == "random" else "fixed_random_synthesizer"
                scores.append(p(f"attn.{s}.weight").reshape(H, n, n)[None, :, :Tn, :Tn])
            else:
                R1 = p("attn.factorized_random_synthesizer.r_1").reshape(H, n, -1)[:, :Tn]
                R2 = p("attn.factorized_random_synthesizer.r_2").reshape(H, n, -1)[:, :Tn]
                scores.append((R1 @ R2.transpose(-1, -2))[None])
        if len(kinds) > 1:
            w = torch.softmax(p("attn.mixture.weight"), dim=-1)          # (H, kinds)
            S = sum(w[None, :, c, None, None] * sc for c, sc in enumerate(scores))
        else:
            S = scores[0]
        S = S.masked_fill(~causal, float("-inf"))
        att = torch.softmax(S, dim=-1) @ v                           # (B, H, T, dh)
        att = att.transpose(1, 2).reshape(Bn, Tn, d)
        X = X + att @ p("attn.c_proj.weight") + p("attn.c_proj.bias")
        M = gelu(layer_norm(X, p("ln_2.weight"), p("ln_2.bias")) @ p("mlp.c_fc.weight")
                 + p("mlp.c_fc.bias"))
        X = (0 if no_last_residual and l == L - 1 else X) + M @ p("mlp.c_proj.weight") + p("mlp.c_proj.bias")
        run.out = X
    X = run.h
    h = layer_norm(X, P[f"{g}.ln_f.weight"], P[f"{g}.ln_f.bias"])

    if arch == "backpack":
        # 2. sense network, at every position (the C code runs it once per word)
        s = lambda n: P[f"backpack.sense_network.{n}"]
        e = E[x]
        r1 = e + layer_norm(e, s("ln.weight"), s("ln.bias"))
        r2 = r1 + gelu(layer_norm(r1, s("block.ln_1.weight"), s("block.ln_1.bias"))
                       @ s("block.mlp.c_fc.weight") + s("block.mlp.c_fc.bias")) \
            @ s("block.mlp.c_proj.weight") + s("block.mlp.c_proj.bias")
        c = gelu(layer_norm(r2, s("block.ln_2.weight"), s("block.ln_2.bias"))
                 @ s("final_mlp.c_fc.weight") + s("final_mlp.c_fc.bias")) \
            @ s("final_mlp.c_proj.weight") + s("final_mlp.c_proj.bias")
        senses = c.reshape(Bn, Tn, k, d)                             # C(x_j)_l
        # 3. sense weights: nn.Linear, weight stored [2d, d]
        Z = h @ P["backpack.sense_weight_net.c_attn.weight"].T + P["backpack.sense_weight_net.c_attn.bias"]
        dk = d // k
        Q = Z[..., :d].reshape(Bn, Tn, k, dk).transpose(1, 2)        # (B, k, T, dk)
        K = Z[..., d:].reshape(Bn, Tn, k, dk).transpose(1, 2)
        scores = Q @ K.transpose(-1, -2) / math.sqrt(dk) - 10000.0 * (~causal).to(Q.dtype)
        alpha = torch.softmax(scores, dim=-1)                         # (B, k, T, T)
        # 4. mixing and tied output
        o = torch.einsum("blij,bjld->bid", alpha, senses)
        logits = o @ E.T
    else:
        logits = h @ E.T
    loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    return logits, loss


# ------------------------------------------------------------------------------------

def check(arch, tools, workdir, seed, variant="dot", no_last_residual=False):
    rng = np.random.default_rng(seed)
    params = random_params(arch, rng, variant)
    label = arch if variant == "dot" else f"{arch}, attention {variant}"
    if no_last_residual:
        label += " without the last residual"
    tag = f"{arch}.{variant.replace(':', '_').replace('+', '_')}" + ("-nlr" if no_last_residual else "")
    ckpt = os.path.join(workdir, tag)
    write_checkpoint(ckpt, arch, params, variant, no_last_residual)
    Tn = T if variant == "dot" else T_SYNTH
    # words from a part of the vocabulary, so that they repeat; targets from all of it
    x = rng.integers(0, CFG["V"] // 2, size=(B, Tn))
    y = rng.integers(0, CFG["V"], size=(B, Tn))
    batch = os.path.join(workdir, f"{tag}.batch.txt")
    with open(batch, "w") as f:
        f.write(f"{B} {Tn}\n" + " ".join(map(str, x.ravel())) + "\n"
                + " ".join(map(str, y.ravel())) + "\n")
    dump = os.path.join(workdir, f"{tag}.out.safetensors")
    tool = os.path.join(tools, "tool_model_refdump")
    r = subprocess.run([tool, ckpt, batch, dump], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"{label}: {tool} failed: {r.stderr.strip()}")
        return False
    c_out = read_safetensors(dump)

    # the fixed random table is a constant: no gradient
    P = {n: torch.tensor(v, dtype=torch.float64, requires_grad="fixed_random" not in n)
         for n, v in params.items()}
    logits, loss = reference_forward(arch, P, torch.tensor(x), torch.tensor(y), variant,
                                     no_last_residual=no_last_residual)
    loss.backward()

    ok = True
    dl = float(np.abs(c_out["logits"].astype(np.float64) - logits.detach().numpy()).max())
    dloss = abs(float(c_out["loss"][0]) - loss.item())
    print(f"{label}: logits std {logits.detach().std().item():.3f}, loss {loss.item():.6f}")
    print(f"  max |logits diff| {dl:.3e} (tolerance {LOGITS_TOL:g})")
    print(f"  |loss diff|       {dloss:.3e} (tolerance {LOSS_TOL:g})")
    ok &= dl <= LOGITS_TOL and dloss <= LOSS_TOL
    worst_rel, worst_name = 0.0, ""
    for name in params:
        key = f"grad.{name}"
        if key not in c_out:
            print(f"  {key}: missing from the C output")
            ok = False
            continue
        ref = P[name].grad.numpy() if P[name].requires_grad else np.zeros(P[name].shape)
        got = c_out[key].astype(np.float64)
        if got.shape != ref.shape:
            print(f"  {key}: shape {got.shape}, reference {ref.shape}")
            ok = False
            continue
        diff = float(np.abs(got - ref).max())
        scale = float(np.abs(ref).max())
        rel = diff / scale if scale > 0 else diff
        if rel > worst_rel:
            worst_rel, worst_name = rel, name
        if diff > GRAD_REL_TOL * scale + GRAD_ABS_TOL or (scale == 0 and diff != 0):
            print(f"  grad {name}: max |diff| {diff:.3e}, max |grad| {scale:.3e}  FAIL")
            ok = False
    extra = [k for k in c_out if k.startswith("grad.") and k[5:] not in params]
    if extra:
        print(f"  unexpected tensors in the C output: {extra[:5]}")
        ok = False
    print(f"  gradients of {len(params)} tensors: worst max|diff|/max|grad| {worst_rel:.3e} "
          f"({worst_name}; tolerance {GRAD_REL_TOL:g})")
    print(f"  {'ok' if ok else 'FAILED'}")
    return ok


# plans for L = 3: a skip, a repeat, a parallel group, a loop of a parallel group, and
# a sequence inside a parallel branch
PLANS = ["0,2", "0,1,1,1,2", "0,1+2", "0,(1+2)*3,2", "(0,2)+1*2"]


def check_plans(arch, tools, workdir, seed):
    rng = np.random.default_rng(seed)
    params = random_params(arch, rng)
    ckpt = os.path.join(workdir, arch + "-plans")
    write_checkpoint(ckpt, arch, params)
    x = rng.integers(0, CFG["V"] // 2, size=(B, T))
    y = rng.integers(0, CFG["V"], size=(B, T))
    batch = os.path.join(workdir, f"{arch}.plans.batch.txt")
    with open(batch, "w") as f:
        f.write(f"{B} {T}\n" + " ".join(map(str, x.ravel())) + "\n" + " ".join(map(str, y.ravel())) + "\n")
    P = {n: torch.tensor(v, dtype=torch.float64) for n, v in params.items()}
    base, _ = reference_forward(arch, P, torch.tensor(x), torch.tensor(y))
    ok = True
    print(f"{arch} under layer plans (L = {CFG['L']}):")
    for plan in PLANS:
        dump = os.path.join(workdir, f"{arch}.plan.out.safetensors")
        tool = os.path.join(tools, "tool_model_refdump")
        r = subprocess.run([tool, ckpt, batch, dump, plan], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"  {plan}: {tool} failed: {r.stderr.strip()}")
            ok = False
            continue
        c_out = read_safetensors(dump)
        logits, loss = reference_forward(arch, P, torch.tensor(x), torch.tensor(y), plan=plan)
        dl = float(np.abs(c_out["logits"].astype(np.float64) - logits.numpy()).max())
        dloss = abs(float(c_out["loss"][0]) - loss.item())
        moved = float((logits - base).abs().max())  # the plan is another model
        good = dl <= LOGITS_TOL and dloss <= LOSS_TOL and moved > 1e-2
        print(f"  {plan:14s} loss {loss.item():.6f}  max |logits diff| {dl:.3e}  "
              f"|loss diff| {dloss:.3e}  (moved {moved:.2f} from the model)  "
              f"{'ok' if good else 'FAIL'}")
        ok &= good
    return ok


def main():
    tools = os.environ.get("TOOLS")
    if not tools:
        backpack = os.environ.get("BACKPACK", "build/backpack")
        tools = os.path.join(os.path.dirname(backpack) or ".", "tests")
    torch.set_num_threads(1)
    ok = True
    with tempfile.TemporaryDirectory(prefix="bp-reference-") as workdir:
        for i, arch in enumerate(("backpack", "gpt2")):
            ok &= check(arch, tools, workdir, seed=1234 + i)
            ok &= check(arch, tools, workdir, seed=2234 + i, no_last_residual=True)
            ok &= check_plans(arch, tools, workdir, seed=3234 + i)
        for i, arch in enumerate(("backpack", "gpt2")):
            for j, variant in enumerate(VARIANTS[1:]):
                ok &= check(arch, tools, workdir, seed=2000 + 100 * i + j, variant=variant)
    print("check-reference: " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
