#!/usr/bin/env python3
"""Writes a tiny checkpoint directory the way the PyTorch side lays it out, independently
of the C writer: config.json as Hugging Face writes it for stanfordnlp/backpack-gpt2
(with keys the C loader ignores), and model.safetensors in state_dict order (not sorted)
with the tied-embedding aliases and the boolean attention-mask buffers a published file
holds. Used by tests/test_model_checkpoint.c to prove such a file loads.

    make_hf_checkpoint.py OUT_DIR [f32|f16|bf16] [backpack|gpt2]

Tensor names come from the spec (docs/backpack-spec.md), not from the C code. Every
parameter element is  ((i * 7 + seed * 13) % 1000) / 1000 - 0.5  (i = flat index,
seed = sum of the name's bytes % 97), so the C test can recompute it exactly.
Only numpy and the standard library: the safetensors package is not needed.
"""
import json
import os
import struct
import sys

import numpy as np

V, D, L, H, K, N = 50, 16, 2, 2, 4, 8  # the C test's tiny configuration


def values(name, shape):
    n = int(np.prod(shape)) if shape else 1
    seed = sum(name.encode()) % 97
    i = np.arange(n, dtype=np.int64)
    return (((i * 7 + seed * 13) % 1000) / 1000.0 - 0.5).astype(np.float32).reshape(shape)


def to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns, round to nearest even (as torch does)."""
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return bits.astype(np.uint16)


def state_dict(arch):
    """(name, array, dtype tag) in the order PyTorch's state_dict yields them."""
    out = []
    g = "backpack.gpt2_model" if arch == "backpack" else "transformer"

    def p(name, *shape):
        out.append((name, values(name, shape), "param"))

    p(f"{g}.wte.weight", V, D)
    p(f"{g}.wpe.weight", N, D)
    for l in range(L):
        h = f"{g}.h.{l}"
        p(f"{h}.ln_1.weight", D)
        p(f"{h}.ln_1.bias", D)
        out.append((f"{h}.attn.bias", np.tril(np.ones((N, N), dtype=np.bool_)).reshape(1, 1, N, N), "BOOL"))
        out.append((f"{h}.attn.masked_bias", np.array(-1e4, dtype=np.float32), "F32"))
        p(f"{h}.attn.c_attn.weight", D, 3 * D)
        p(f"{h}.attn.c_attn.bias", 3 * D)
        p(f"{h}.attn.c_proj.weight", D, D)
        p(f"{h}.attn.c_proj.bias", D)
        p(f"{h}.ln_2.weight", D)
        p(f"{h}.ln_2.bias", D)
        p(f"{h}.mlp.c_fc.weight", D, 4 * D)
        p(f"{h}.mlp.c_fc.bias", 4 * D)
        p(f"{h}.mlp.c_proj.weight", 4 * D, D)
        p(f"{h}.mlp.c_proj.bias", D)
    p(f"{g}.ln_f.weight", D)
    p(f"{g}.ln_f.bias", D)
    wte = out[0][1]
    if arch == "backpack":
        s = "backpack.sense_network"
        for name, shape in [
            (f"{s}.ln.weight", (D,)), (f"{s}.ln.bias", (D,)),
            (f"{s}.block.ln_1.weight", (D,)), (f"{s}.block.ln_1.bias", (D,)),
            (f"{s}.block.mlp.c_fc.weight", (D, 4 * D)), (f"{s}.block.mlp.c_fc.bias", (4 * D,)),
            (f"{s}.block.mlp.c_proj.weight", (4 * D, D)), (f"{s}.block.mlp.c_proj.bias", (D,)),
            (f"{s}.block.ln_2.weight", (D,)), (f"{s}.block.ln_2.bias", (D,)),
            (f"{s}.final_mlp.c_fc.weight", (D, 4 * D)), (f"{s}.final_mlp.c_fc.bias", (4 * D,)),
            (f"{s}.final_mlp.c_proj.weight", (4 * D, K * D)),
            (f"{s}.final_mlp.c_proj.bias", (K * D,)),
            ("backpack.sense_weight_net.c_attn.weight", (2 * D, D)),
            ("backpack.sense_weight_net.c_attn.bias", (2 * D,)),
        ]:
            p(name, *shape)
        # Aliases of the tied tensors, as the published checkpoint holds them.
        out.append(("backpack.word_embeddings.weight", wte, "alias"))
        out.append(("backpack.position_embeddings.weight", out[1][1], "alias"))
    out.append(("lm_head.weight", wte, "alias"))
    return out


def main():
    out_dir = sys.argv[1]
    dtype = sys.argv[2] if len(sys.argv) > 2 else "f32"
    arch = sys.argv[3] if len(sys.argv) > 3 else "backpack"
    os.makedirs(out_dir, exist_ok=True)
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr, tag in state_dict(arch):
        if tag == "BOOL":
            st, raw = "BOOL", arr.astype(np.uint8).tobytes()
        elif tag == "F32" or dtype == "f32":
            st, raw = "F32", arr.astype("<f4").tobytes()
        elif dtype == "f16":
            st, raw = "F16", arr.astype("<f2").tobytes()
        else:
            st, raw = "BF16", to_bf16_bits(arr).astype("<u2").tobytes()
        header[name] = {"dtype": st, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(os.path.join(out_dir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for b in blobs:
            f.write(b)
    if arch == "backpack":
        config = {
            "activation_function": "gelu_new",
            "architectures": ["BackpackGPT2LMHeadModel"],
            "attn_pdrop": 0.1,
            "auto_map": {"AutoConfig": "configuration_backpack_gpt2.BackpackGPT2Config",
                         "AutoModelForCausalLM": "modeling_backpack_gpt2.BackpackGPT2LMHeadModel"},
            "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256,
            "initializer_range": 0.02, "layer_norm_epsilon": 1e-05,
            "model_type": "backpack-gpt2", "n_embd": D, "n_head": H, "n_inner": None,
            "n_layer": L, "n_positions": N, "num_senses": K, "reorder_and_upcast_attn": False,
            "resid_pdrop": 0.1, "scale_attn_by_inverse_layer_idx": True,
            "scale_attn_weights": True, "sense_intermediate_scale": 4,
            "torch_dtype": {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}[dtype],
            "transformers_version": "4.29.0", "use_cache": True, "vocab_size": V,
        }
    else:
        config = {
            "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
            "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": N, "n_embd": D,
            "n_head": H, "n_inner": None, "n_layer": L, "n_positions": N,
            "scale_attn_by_inverse_layer_idx": True, "tie_word_embeddings": True,
            "vocab_size": V,
        }
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
