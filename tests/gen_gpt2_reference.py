#!/usr/bin/python3
"""Writes tests/data/gpt2_reference.safetensors: a PyTorch (float64) reference for align's
GPT-2 training forward and backward, checked by tests/test_gpt2_reference.c.

Written from the GPT-2 definition alone (no align code is read or imported): token +
learned position embeddings; per block x += attn(LN1(x)), x += mlp(LN2(x)); final LN;
logits = LNf(x) W^T with W = tok_emb (tied) or wcls (untied).
  LN(x)   = torch.nn.functional.layer_norm(x, [D], w, b, eps)   (biased variance)
  attn(h) = wo (concat_heads softmax(q k^T / sqrt(head_dim) + causal mask) v) + bo,
            q = wq h + bq, k = wk h + bk, v = wv h + bv, head i = rows [i*hd, (i+1)*hd)
  mlp(h)  = w2 gelu_tanh(w1 h + b1) + b2   (torch's gelu(approximate="tanh"))
Per position n with target y_n >= 0:  logp_n = log_softmax(logits_n)[y_n]; logp_n = 0 where
y_n < 0 (ignored).  loss = -(sum of logp_n over valid n) / n_valid.  grad.<kind> =
d loss / d <kind> by autograd (for tied embeddings tok_emb's gradient holds both uses).

Precision: parameters are drawn in float64 from a fixed seed and rounded to float32 (the
values stored); the whole computation then runs in float64 on those rounded values, so the
stored logits, logp, loss and gradients are the exact (to ~1e-15) answers for the float32
parameters align reads, rounded once to float32 for storage.

Layout: every tensor under align's kind names and storage (al_tensor_layout): matrices
row-major [out][in] (y = W x), per-layer tensors stacked [L][...].  Two cases share the
file, each under a prefix: "tied." (dim 48, 3 layers, 4 heads, hidden 192, vocab 97,
seq_len 32, tied embeddings) and "untied." (a smaller model with a separate wcls).  Per
case: the parameters, "tokens" and "targets" (I32 [B][T]; a few targets are -1),
"logits" [B*T][V], "logp" [B*T], "loss" [1] (F32) and "grad.<kind>" for every parameter.
__metadata__ (strings): "cases" = "tied,untied" and "<case>.<field>" for dim, hidden_dim,
n_layers, n_heads, head_dim, vocab_size, seq_len, norm_eps, tied_embeddings, B, T, n_valid,
"<case>.loss_f64" (the loss with 17 significant digits), and the definitions above in brief.

Deterministic: fixed seeds, one thread, a hand-written safetensors writer with a fixed
key order, so a rerun writes the same bytes.

  /usr/bin/python3 tests/gen_gpt2_reference.py [--out PATH] [--fd]
--fd also checks a few gradient entries per tensor against central finite differences
(float64) and prints the worst relative disagreement (a check of the reference itself).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

CASES = [
    dict(name="tied", dim=48, hidden_dim=192, n_layers=3, n_heads=4, vocab_size=97, seq_len=32,
         norm_eps=1e-5, tied=True, B=2, T=16, seed=1234),
    dict(name="untied", dim=24, hidden_dim=96, n_layers=2, n_heads=3, vocab_size=53, seq_len=20,
         norm_eps=1e-5, tied=False, B=2, T=12, seed=5678),
]


def kinds_of(c):
    """align's GPT-2 storage order (include/align/model.h) and each kind's shape."""
    L, D, H, V, S = c["n_layers"], c["dim"], c["hidden_dim"], c["vocab_size"], c["seq_len"]
    k = [("tok_emb", [V, D]), ("pos_emb", [S, D]),
         ("rms_att", [L, D]), ("bln_att", [L, D]),
         ("wq", [L, D, D]), ("wk", [L, D, D]), ("wv", [L, D, D]),
         ("bq", [L, D]), ("bk", [L, D]), ("bv", [L, D]),
         ("wo", [L, D, D]), ("bo", [L, D]),
         ("rms_ffn", [L, D]), ("bln_ffn", [L, D]),
         ("w1", [L, H, D]), ("b1", [L, H]), ("w2", [L, D, H]), ("b2", [L, D]),
         ("rms_final", [D]), ("bln_final", [D])]
    if not c["tied"]:
        k.append(("wcls", [V, D]))
    return k


def init_params(c, gen):
    """Random weights of O(1) activations: matrices N(0, 1/in), embeddings N(0, 0.3^2) (tok)
    and N(0, 0.2^2) (pos), LayerNorm weights 1 + N(0, 0.2^2), every bias N(0, 0.1^2), so
    no gradient is structurally trivial.  Drawn in float64, rounded to float32."""
    p = {}
    for kind, shape in kinds_of(c):
        z = torch.randn(shape, generator=gen, dtype=torch.float64)
        if kind == "tok_emb":
            v = 0.3 * z
        elif kind == "pos_emb":
            v = 0.2 * z
        elif kind == "wcls":
            v = 0.3 * z
        elif kind.startswith("rms_"):
            v = 1.0 + 0.2 * z
        elif kind.startswith("w"):
            v = z / math.sqrt(shape[-1])
        else:  # bln_*, bq, bk, bv, bo, b1, b2
            v = 0.1 * z
        p[kind] = v.to(torch.float32).to(torch.float64).requires_grad_(True)
    return p


def forward(c, p, tokens, targets):
    """logits [B*T][V], logp [B*T] (0 at ignored targets), loss (scalar), in float64."""
    B, T = tokens.shape
    D, nh, eps = c["dim"], c["n_heads"], c["norm_eps"]
    hd = D // nh
    x = p["tok_emb"][tokens] + p["pos_emb"][:T].unsqueeze(0)  # [B][T][D]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(c["n_layers"]):
        h = F.layer_norm(x, [D], p["rms_att"][l], p["bln_att"][l], eps)
        q = h @ p["wq"][l].T + p["bq"][l]
        k = h @ p["wk"][l].T + p["bk"][l]
        v = h @ p["wv"][l].T + p["bv"][l]
        q, k, v = (t.view(B, T, nh, hd).transpose(1, 2) for t in (q, k, v))  # [B][nh][T][hd]
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = s.masked_fill(~causal, float("-inf"))
        y = torch.softmax(s, dim=-1) @ v
        y = y.transpose(1, 2).reshape(B, T, D)
        x = x + y @ p["wo"][l].T + p["bo"][l]
        h = F.layer_norm(x, [D], p["rms_ffn"][l], p["bln_ffn"][l], eps)
        u = F.gelu(h @ p["w1"][l].T + p["b1"][l], approximate="tanh")
        x = x + u @ p["w2"][l].T + p["b2"][l]
    x = F.layer_norm(x, [D], p["rms_final"], p["bln_final"], eps)
    W = p["tok_emb"] if c["tied"] else p["wcls"]
    logits = (x @ W.T).reshape(B * T, -1)
    lsm = torch.log_softmax(logits, dim=-1)
    tg = targets.reshape(-1)
    valid = tg >= 0
    logp = torch.where(valid, lsm.gather(1, tg.clamp(min=0).unsqueeze(1)).squeeze(1),
                       torch.zeros((), dtype=lsm.dtype))
    loss = -logp.sum() / valid.sum()
    return logits, logp, loss


def make_batch(c, gen):
    B, T, V = c["B"], c["T"], c["vocab_size"]
    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    # ignored targets: the last position of row 0 (padding), two in the middle of row 1
    targets[0, T - 1] = -1
    targets[1, 3] = -1
    targets[1, T // 2] = -1
    return tokens, targets


def finite_diff_check(c, p, tokens, targets, grads, gen, per_tensor=3, h=1e-6):
    """Worst |fd - autograd| / scale over a few random entries per tensor, scale = the
    largest gradient entry of the whole model (grad.bk is exactly 0 in exact arithmetic:
    softmax ignores a key bias, which shifts a query's scores by a constant)."""
    scale = max(g.abs().max().item() for g in grads.values())
    worst = 0.0
    for kind, _ in kinds_of(c):
        flat = p[kind].detach().view(-1)
        idx = torch.randint(0, flat.numel(), (per_tensor,), generator=gen)
        for i in idx.tolist():
            with torch.no_grad():
                old = flat[i].item()
                flat[i] = old + h
                lp = forward(c, p, tokens, targets)[2].item()
                flat[i] = old - h
                lm = forward(c, p, tokens, targets)[2].item()
                flat[i] = old
            fd = (lp - lm) / (2 * h)
            g = grads[kind].view(-1)[i].item()
            err = abs(fd - g) / scale
            worst = max(worst, err)
            if err > 1e-6:
                print(f"  fd {c['name']}.{kind}[{i}]: autograd {g:.10g} fd {fd:.10g}", file=sys.stderr)
    return worst


def run_case(c, fd):
    gen = torch.Generator().manual_seed(c["seed"])
    p = init_params(c, gen)
    tokens, targets = make_batch(c, gen)
    logits, logp, loss = forward(c, p, tokens, targets)
    loss.backward()
    grads = {k: p[k].grad.detach().clone() for k, _ in kinds_of(c)}
    if fd:
        w = finite_diff_check(c, p, tokens, targets, grads, gen)
        print(f"{c['name']}: finite differences vs autograd, worst |diff| / (largest gradient entry) = {w:.2e}")
    n = c["name"]
    out = []  # (name, dtype, shape, bytes)

    def f32(name, t):
        a = np.ascontiguousarray(t.detach().numpy().astype("<f4"))
        out.append((f"{n}.{name}", "F32", list(a.shape), a.tobytes()))

    def i32(name, t):
        a = np.ascontiguousarray(t.numpy().astype("<i4"))
        out.append((f"{n}.{name}", "I32", list(a.shape), a.tobytes()))

    for kind, _ in kinds_of(c):
        f32(kind, p[kind])
    i32("tokens", tokens)
    i32("targets", targets)
    f32("logits", logits)
    f32("logp", logp)
    f32("loss", loss.reshape(1))
    for kind, _ in kinds_of(c):
        f32("grad." + kind, grads[kind])
    meta = {f"{n}.{k}": str(c[k]) for k in ("dim", "hidden_dim", "n_layers", "n_heads", "vocab_size",
                                           "seq_len", "B", "T")}
    meta[f"{n}.head_dim"] = str(c["dim"] // c["n_heads"])
    meta[f"{n}.norm_eps"] = repr(c["norm_eps"])
    meta[f"{n}.tied_embeddings"] = "1" if c["tied"] else "0"
    meta[f"{n}.n_valid"] = str(int((targets >= 0).sum()))
    meta[f"{n}.loss_f64"] = "%.17g" % loss.item()
    print(f"{n}: loss {loss.item():.10f}, {int((targets >= 0).sum())} valid targets, "
          f"logits in [{logits.min().item():.3f}, {logits.max().item():.3f}]")
    return out, meta


def write_safetensors(path, tensors, meta):
    header = {"__metadata__": meta}
    off = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, data in tensors:
            f.write(data)
    os.replace(tmp, path)
    return 8 + len(h) + off


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "data", "gpt2_reference.safetensors"))
    ap.add_argument("--fd", action="store_true", help="check autograd against finite differences")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tensors, meta = [], {
        "format": "align-gpt2-reference",
        "generator": "tests/gen_gpt2_reference.py",
        "cases": ",".join(c["name"] for c in CASES),
        "precision": "float64 computation on float32-rounded parameters; stored as F32",
        "loss": "-(sum of logp over targets >= 0) / n_valid; logp = log_softmax(logits)[target], 0 if target < 0",
        "gelu": "tanh approximation",
        "layer_norm": "biased variance, eps = norm_eps",
    }
    for c in CASES:
        t, m = run_case(c, a.fd)
        tensors += t
        meta.update(m)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    size = write_safetensors(a.out, tensors, meta)
    print(f"wrote {a.out} ({size} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
