#!/usr/bin/python3
"""PyTorch reference trainer for align (docs/training.md), and a training-throughput probe.

Reference mode (`--run-dir OUT`): repeats an `align pretrain` run in PyTorch from the same
initial weights and the same tokens, and prints the per-step loss and the eval_loss as JSON
lines.  It reads
  OUT/init/model.safetensors + config.json   the initial weights (HF names and rotary layout)
  OUT/train_args.json                         batch_size, seq_len, grad_accum, steps, lr, ...
  OUT/data.json                               the train/validation token cache files
and implements, independently of align:
  - the Llama decoder as Hugging Face transformers does (LlamaRMSNorm, rotate_half rotary
    with float32 inv_freq = 1/theta**(arange(0,hd,2)/hd), SwiGLU, GQA via repeat_kv,
    tied or untied classifier, q/k/v biases when the checkpoint has them);
  - the batch order: sequential windows, pos += B*T, wrap to 0 when pos + B*T + 1 > n;
  - loss = sum of per-token NLL over the K micro-batches of a step / their target count;
  - torch.nn.utils.clip_grad_norm_ (grad_norm logged before clipping);
  - torch.optim.AdamW with two groups (2-D weights decay, norms and biases do not);
  - the warmup + constant/linear/cosine/wsd schedule, written out by hand;
  - eval_loss over eval_batches x B non-overlapping windows of the validation stream.
With --compare it also reads OUT/metrics.jsonl and prints how far align's numbers are
from these (RESULT lines, for bench/pretrain.sh).

Throughput mode (`--throughput`): a random-init model of the given shape trained on random
tokens; times fwd + bwd + clip + AdamW steps after warm-up and prints one JSON line with
tokens/s, peak RSS and PyTorch's own sgemm GFLOP/s.  Used by bench/throughput.sh.
With --gpt2 the model is GPT-2 as nanoGPT writes it (class GPT2 below: nn.Embedding wte/wpe,
pre-LayerNorm blocks, fused c_attn with biases, causal attention, tanh GELU, c_proj biases,
final LayerNorm, lm_head tied to wte), trained with mean cross-entropy and AdamW; --no-clip,
--beta2, --wd, --max-pos set what bench/gpt2_train.sh compares with llm.c.

Run with Debian's interpreter (/usr/bin/python3, python3-torch); 2 threads by default.
"""
import argparse
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

# ---------------------------------------------------------------------------------------
# files


def read_safetensors(path):
    """Returns {name: float32 tensor}.  F32, F16 and BF16 are accepted."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = blob[base + b: base + end]
        shape = e["shape"]
        if e["dtype"] == "F32":
            t = torch.from_numpy(np.frombuffer(raw, dtype="<f4").copy())
        elif e["dtype"] == "F16":
            t = torch.from_numpy(np.frombuffer(raw, dtype="<f2").astype(np.float32))
        elif e["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            t = torch.from_numpy(u.view(np.float32).copy())
        else:
            raise SystemExit(f"{path}: tensor {name}: unsupported dtype {e['dtype']}")
        out[name] = t.reshape(shape)
    return out


def read_tokens(path, expect_count=None, expect_width=None):
    """align's token cache: "ALTOKENS", u32 version, u32 bytes/id, u64 count, ids."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24 or head[:8] != b"ALTOKENS":
            raise SystemExit(f"{path}: not an align token cache (magic)")
        version, width, count = struct.unpack_from("<IIQ", head, 8)
        if version != 1 or width not in (2, 4):
            raise SystemExit(f"{path}: version {version}, width {width} not supported")
        data = f.read()
    if len(data) != count * width:
        raise SystemExit(f"{path}: {len(data)} bytes of ids, header says {count} x {width}")
    if expect_count is not None and expect_count != count:
        raise SystemExit(f"{path}: data.json says {expect_count} ids, the file holds {count}")
    if expect_width is not None and expect_width != width:
        raise SystemExit(f"{path}: data.json says {expect_width} bytes/id, the file has {width}")
    ids = np.frombuffer(data, dtype="<u2" if width == 2 else "<u4").astype(np.int64)
    return torch.from_numpy(ids)


def stream_entries(desc, run_dir):
    """(train, val) entries of OUT/data.json as dicts with path, count, width.
    Tolerates a few spellings: {"train": {"path"|"cache"|"file", "count"|"n"|"tokens"}, ...}."""
    def entry(key):
        e = desc.get(key)
        if e is None:
            e = desc.get(key + "_stream") or desc.get("validation" if key == "val" else key)
        if e is None:
            raise SystemExit(f"{run_dir}/data.json: no '{key}' entry (keys: {sorted(desc)})")
        if isinstance(e, str):
            e = {"path": e}
        path = e.get("path") or e.get("cache") or e.get("cache_path") or e.get("file")
        if not os.path.isabs(path):
            path = os.path.join(run_dir, path)
        count = e.get("count", e.get("n", e.get("tokens")))
        width = e.get("bytes_per_id", desc.get("bytes_per_id"))
        return {"path": path, "count": count, "width": width}
    return entry("train"), entry("val")


# ---------------------------------------------------------------------------------------
# model


class Cfg:
    def __init__(self, hf):
        self.dim = hf["hidden_size"]
        self.hidden = hf["intermediate_size"]
        self.layers = hf["num_hidden_layers"]
        self.heads = hf["num_attention_heads"]
        self.kv_heads = hf.get("num_key_value_heads") or self.heads
        self.head_dim = hf.get("head_dim") or self.dim // self.heads
        self.vocab = hf["vocab_size"]
        self.max_pos = hf["max_position_embeddings"]
        self.eps = float(hf.get("rms_norm_eps", 1e-6))
        self.theta = float(hf.get("rope_theta", 10000.0))
        self.tied = bool(hf.get("tie_word_embeddings", False))
        self.bias = hf.get("model_type") == "qwen2" or "Qwen2ForCausalLM" in hf.get("architectures", [])

    def names(self):
        """(HF name, shape) of every parameter."""
        D, H, qd, kvd = self.dim, self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        out = [("model.embed_tokens.weight", (self.vocab, D))]
        for l in range(self.layers):
            p = f"model.layers.{l}."
            out += [(p + "input_layernorm.weight", (D,)),
                    (p + "self_attn.q_proj.weight", (qd, D)),
                    (p + "self_attn.k_proj.weight", (kvd, D)),
                    (p + "self_attn.v_proj.weight", (kvd, D)),
                    (p + "self_attn.o_proj.weight", (D, qd)),
                    (p + "post_attention_layernorm.weight", (D,)),
                    (p + "mlp.gate_proj.weight", (H, D)),
                    (p + "mlp.up_proj.weight", (H, D)),
                    (p + "mlp.down_proj.weight", (D, H))]
            if self.bias:
                out += [(p + "self_attn.q_proj.bias", (qd,)), (p + "self_attn.k_proj.bias", (kvd,)),
                        (p + "self_attn.v_proj.bias", (kvd,))]
        out.append(("model.norm.weight", (D,)))
        if not self.tied:
            out.append(("lm_head.weight", (self.vocab, D)))
        return out

    def matmul_params(self):
        """Parameters that take part in a matrix product per token (the classifier counts
        once even when tied; the embedding lookup does not count)."""
        D, H, qd, kvd = self.dim, self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        return self.layers * (D * qd + 2 * D * kvd + qd * D + 3 * D * H) + self.vocab * D


def rms_norm(x, w, eps):
    # transformers' LlamaRMSNorm (float32 throughout here)
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Llama:
    def __init__(self, cfg, tensors):
        self.cfg = cfg
        self.p = {}
        for name, shape in cfg.names():
            if name not in tensors:
                raise SystemExit(f"missing tensor {name}")
            t = tensors[name].to(torch.float32).contiguous()
            if tuple(t.shape) != tuple(shape):
                raise SystemExit(f"tensor {name}: shape {tuple(t.shape)}, expected {shape}")
            self.p[name] = t.requires_grad_(True)
        extra = set(tensors) - set(self.p) - {n for n in tensors if n.endswith("rotary_emb.inv_freq")}
        if extra:
            raise SystemExit(f"unexpected tensors: {sorted(extra)[:5]}")
        self._rope = {}
        self._mask = {}

    @staticmethod
    def random(cfg, seed):
        """Normal(0, 0.02) matrices, residual projections scaled by 1/sqrt(2L), norms 1."""
        g = torch.Generator().manual_seed(seed)
        t = {}
        for name, shape in cfg.names():
            if len(shape) == 1:
                t[name] = torch.ones(shape) if name.endswith("norm.weight") else torch.zeros(shape)
            else:
                std = 0.02
                if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                    std /= math.sqrt(2 * cfg.layers)
                t[name] = torch.randn(shape, generator=g) * std
        return Llama(cfg, t)

    def parameters(self):
        return list(self.p.values())

    def param_groups(self, wd):
        decay = [t for t in self.p.values() if t.dim() >= 2]
        no_decay = [t for t in self.p.values() if t.dim() < 2]
        return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]

    def rope(self, T):
        if T not in self._rope:
            hd = self.cfg.head_dim
            inv_freq = 1.0 / (self.cfg.theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
            t = torch.arange(T, dtype=torch.int64).float()
            freqs = torch.outer(t, inv_freq)
            emb = torch.cat((freqs, freqs), dim=-1)
            self._rope[T] = (emb.cos(), emb.sin())
        return self._rope[T]

    def mask(self, T):
        if T not in self._mask:
            self._mask[T] = torch.ones(T, T, dtype=torch.bool).triu(1)
        return self._mask[T]

    def forward(self, tokens):
        """tokens [B, T] int64 -> logits [B, T, V]."""
        c, p = self.cfg, self.p
        B, T = tokens.shape
        hd, Hq, Hkv = c.head_dim, c.heads, c.kv_heads
        cos, sin = self.rope(T)
        mask = self.mask(T)
        x = F.embedding(tokens, p["model.embed_tokens.weight"])
        for l in range(c.layers):
            pre = f"model.layers.{l}."
            h = rms_norm(x, p[pre + "input_layernorm.weight"], c.eps)
            q = F.linear(h, p[pre + "self_attn.q_proj.weight"], p.get(pre + "self_attn.q_proj.bias"))
            k = F.linear(h, p[pre + "self_attn.k_proj.weight"], p.get(pre + "self_attn.k_proj.bias"))
            v = F.linear(h, p[pre + "self_attn.v_proj.weight"], p.get(pre + "self_attn.v_proj.bias"))
            q = q.view(B, T, Hq, hd).transpose(1, 2)
            k = k.view(B, T, Hkv, hd).transpose(1, 2)
            v = v.view(B, T, Hkv, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if Hkv != Hq:  # repeat_kv: query head h reads kv head h // (Hq / Hkv)
                k = k.repeat_interleave(Hq // Hkv, dim=1)
                v = v.repeat_interleave(Hq // Hkv, dim=1)
            # torch 1.13's CPU batched matmul is ~50x slower on these transposed views
            q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
            att = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(hd)
            att = att.masked_fill(mask, float("-inf"))
            att = torch.softmax(att, dim=-1)
            y = torch.matmul(att, v).transpose(1, 2).reshape(B, T, Hq * hd)
            x = x + F.linear(y, p[pre + "self_attn.o_proj.weight"])
            h = rms_norm(x, p[pre + "post_attention_layernorm.weight"], c.eps)
            g = F.linear(h, p[pre + "mlp.gate_proj.weight"])
            u = F.linear(h, p[pre + "mlp.up_proj.weight"])
            x = x + F.linear(F.silu(g) * u, p[pre + "mlp.down_proj.weight"])
        x = rms_norm(x, p["model.norm.weight"], c.eps)
        w_cls = p["model.embed_tokens.weight"] if c.tied else p["lm_head.weight"]
        return F.linear(x, w_cls)

    def nll_sum(self, tokens, targets):
        """Sum of next-token NLL over targets >= 0, and their count."""
        logits = self.forward(tokens)
        loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1), ignore_index=-1,
                               reduction="sum")
        return loss, int((targets >= 0).sum())


class GPT2Block(torch.nn.Module):
    def __init__(self, dim, heads, eps):
        super().__init__()
        self.heads = heads
        self.ln_1 = torch.nn.LayerNorm(dim, eps=eps)
        self.c_attn = torch.nn.Linear(dim, 3 * dim)
        self.attn_proj = torch.nn.Linear(dim, dim)
        self.ln_2 = torch.nn.LayerNorm(dim, eps=eps)
        self.c_fc = torch.nn.Linear(dim, 4 * dim)
        self.mlp_proj = torch.nn.Linear(4 * dim, dim)

    def attention(self, x, mask):
        B, T, D = x.shape
        q, k, v = self.c_attn(x).split(D, dim=2)
        q, k, v = (t.view(B, T, self.heads, D // self.heads).transpose(1, 2) for t in (q, k, v))
        if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0, as nanoGPT does
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # nanoGPT's fallback; contiguous because torch 1.13's CPU bmm is slow on these views
            q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
            att = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = torch.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
            y = torch.matmul(att, v)
        return self.attn_proj(y.transpose(1, 2).reshape(B, T, D))

    def forward(self, x, mask):
        x = x + self.attention(self.ln_1(x), mask)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT2(torch.nn.Module):
    """GPT-2 (nanoGPT's layout): learned positions, pre-LayerNorm, tied classifier."""

    def __init__(self, dim, layers, heads, vocab, max_pos, eps=1e-5):
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, dim)
        self.wpe = torch.nn.Embedding(max_pos, dim)
        self.h = torch.nn.ModuleList(GPT2Block(dim, heads, eps) for _ in range(layers))
        self.ln_f = torch.nn.LayerNorm(dim, eps=eps)
        self.lm_head = torch.nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        # nanoGPT's init: Normal(0, 0.02) matrices and embeddings, residual projections
        # Normal(0, 0.02/sqrt(2L)), biases 0, LayerNorm weight 1 / bias 0
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                torch.nn.init.zeros_(p)
            elif ".ln_" in name or name.startswith("ln_f"):
                torch.nn.init.ones_(p)
            else:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith("proj.weight") else 0.02
                torch.nn.init.normal_(p, mean=0.0, std=std)
        self._mask = {}

    def forward(self, tokens, targets):
        """Mean next-token cross-entropy over the B*T positions."""
        B, T = tokens.shape
        if T not in self._mask:
            self._mask[T] = torch.ones(T, T, dtype=torch.bool).triu(1)
        x = self.wte(tokens) + self.wpe(torch.arange(T))
        for block in self.h:
            x = block(x, self._mask[T])
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


# ---------------------------------------------------------------------------------------
# schedule, data order (docs/training.md)


def schedule_lr(a, step):
    peak, total, warmup = float(a["lr"]), int(a["steps"]), int(a.get("warmup", 0))
    lo = peak * float(a.get("min_lr_ratio", 0.0))
    kind = a.get("schedule", "cosine")
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    if kind == "constant":
        return peak
    if kind == "linear":
        return peak + (lo - peak) * progress
    if kind == "cosine":
        return lo + (peak - lo) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if kind == "wsd":
        decay = int(float(a.get("wsd_decay", 0.1)) * total + 0.5)  # whole steps, as align rounds
        start = total - decay
        if step < start or decay <= 0:
            return peak
        return peak + (lo - peak) * min(1.0, (step - start) / decay)
    raise SystemExit(f"unknown schedule {kind}")


class Cursor:
    def __init__(self, stream, pos=0, epoch=0):
        self.s, self.pos, self.epoch = stream, pos, epoch

    def next(self, B, T):
        n = self.s.numel()
        if self.pos + B * T + 1 > n:
            self.pos, self.epoch = 0, self.epoch + 1
        w = self.s[self.pos: self.pos + B * T + 1]
        tokens = torch.stack([w[b * T: b * T + T] for b in range(B)])
        targets = torch.stack([w[b * T + 1: b * T + T + 1] for b in range(B)])
        self.pos += B * T
        return tokens, targets


def eval_batch(stream, e, B, T):
    """Rows start at (e*B + b)*T; targets past the end are -1.  None past the end."""
    n = stream.numel()
    if e * B * T >= n - 1:
        return None
    tokens = torch.zeros(B, T, dtype=torch.int64)
    targets = torch.full((B, T), -1, dtype=torch.int64)
    for b in range(B):
        s = (e * B + b) * T
        m = max(0, min(T, n - s))
        if m > 0:
            tokens[b, :m] = stream[s: s + m]
        mt = max(0, min(T, n - 1 - s))
        if mt > 0:
            targets[b, :mt] = stream[s + 1: s + 1 + mt]
    return tokens, targets


@torch.no_grad()
def evaluate(model, val, B, T, n_batches):
    total, count = 0.0, 0
    for e in range(n_batches):
        bt = eval_batch(val, e, B, T)
        if bt is None:
            break
        s, c = model.nll_sum(*bt)
        total += float(s)
        count += c
    return total / max(1, count)


# ---------------------------------------------------------------------------------------
# reference run


def load_json(path):
    with open(path) as f:
        return json.load(f)


def arg(a, *names, default=None):
    for n in names:
        if n in a and a[n] is not None:
            return a[n]
    if default is None:
        raise SystemExit(f"train_args.json: none of {names}")
    return default


def reference(opts):
    run = opts.run_dir
    ta = load_json(os.path.join(run, "train_args.json"))
    a = {
        "batch_size": int(arg(ta, "batch_size")), "seq_len": int(arg(ta, "seq_len")),
        "grad_accum": int(arg(ta, "grad_accum", "gradient_accumulation_steps", default=1)),
        "steps": int(arg(ta, "steps", "max_steps")), "lr": float(arg(ta, "lr", "learning_rate")),
        "min_lr_ratio": float(arg(ta, "min_lr_ratio", default=0.0)),
        "warmup": int(arg(ta, "warmup", "warmup_steps", default=0)),
        "schedule": arg(ta, "schedule", "lr_scheduler_type", default="cosine"),
        "wsd_decay": float(arg(ta, "wsd_decay", default=0.1)),
        "weight_decay": float(arg(ta, "weight_decay", default=0.1)),
        "beta1": float(arg(ta, "beta1", "adam_beta1", default=0.9)),
        "beta2": float(arg(ta, "beta2", "adam_beta2", default=0.95)),
        "eps": float(arg(ta, "eps", "adam_epsilon", default=1e-8)),
        "grad_clip": float(arg(ta, "grad_clip", "max_grad_norm", default=1.0)),
        "eval_batches": int(arg(ta, "eval_batches", default=20)),
        "eval_every": int(arg(ta, "eval_every", default=0)),
    }
    if float(ta.get("skip_outliers", 0) or 0) > 0:
        print("torch_train: warning: skip_outliers is not reproduced", file=sys.stderr)
    if opts.steps is not None:
        a["steps"] = opts.steps  # a prefix of the run (the schedule still uses the run's total)
    total_steps = int(arg(ta, "steps", "max_steps"))
    sched = dict(a, steps=total_steps)

    desc = load_json(os.path.join(run, "data.json"))
    tr, va = stream_entries(desc, run)
    train = read_tokens(tr["path"], tr["count"], tr["width"])
    val = read_tokens(va["path"], va["count"], va["width"])

    init = os.path.join(run, "init")
    cfg = Cfg(load_json(os.path.join(init, "config.json")))
    model = Llama(cfg, read_safetensors(os.path.join(init, "model.safetensors")))
    opt = torch.optim.AdamW(model.param_groups(a["weight_decay"]), lr=a["lr"], betas=(a["beta1"], a["beta2"]),
                            eps=a["eps"], foreach=False)
    out = open(opts.out, "w") if opts.out else sys.stdout

    def emit(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    B, T, K = a["batch_size"], a["seq_len"], a["grad_accum"]
    cur = Cursor(train)
    params = model.parameters()
    t0 = time.perf_counter()
    for step in range(a["steps"]):
        lr = schedule_lr(sched, step)
        for p in params:
            p.grad = None
        batches = [cur.next(B, T) for _ in range(K)]
        N = sum(int((tg >= 0).sum()) for _, tg in batches)
        loss_sum = 0.0
        for tok, tg in batches:
            s, _ = model.nll_sum(tok, tg)
            (s / N).backward()
            loss_sum += float(s)
        if a["grad_clip"] > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(params, a["grad_clip"]))
        else:
            norm = float(torch.norm(torch.stack([p.grad.norm() for p in params])))
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        emit({"step": step + 1, "loss": loss_sum / N, "grad_norm": norm, "learning_rate": lr,
              "epoch": cur.epoch})
        if a["eval_every"] > 0 and (step + 1) % a["eval_every"] == 0 and step + 1 < a["steps"]:
            emit({"step": step + 1, "eval_loss": evaluate(model, val, B, T, a["eval_batches"])})
    ev = evaluate(model, val, B, T, a["eval_batches"])
    emit({"step": a["steps"], "eval_loss": ev, "final": True,
          "seconds": round(time.perf_counter() - t0, 3)})
    if opts.out:
        out.close()
    if opts.dump:
        torch.save({n: t.detach() for n, t in model.p.items()}, opts.dump)
    if opts.compare:
        compare(run, opts.out)


def compare(run, torch_path):
    """Prints RESULT lines comparing OUT/metrics.jsonl (align) with this run's lines."""
    def lines(path):
        with open(path) as f:
            return [json.loads(l) for l in f if l.strip()]
    al = lines(os.path.join(run, "metrics.jsonl"))
    th = lines(torch_path)
    a_loss = {r["step"]: r["loss"] for r in al if "loss" in r}
    t_loss = {r["step"]: r["loss"] for r in th if "loss" in r}
    a_norm = {r["step"]: r["grad_norm"] for r in al if "grad_norm" in r}
    t_norm = {r["step"]: r["grad_norm"] for r in th if "grad_norm" in r}
    a_lr = {r["step"]: r["learning_rate"] for r in al if "learning_rate" in r}
    t_lr = {r["step"]: r["learning_rate"] for r in th if "learning_rate" in r}
    common = sorted(set(a_loss) & set(t_loss))
    if not common:
        print(f"RESULT no common steps (align steps {sorted(a_loss)[:3]}..., torch {sorted(t_loss)[:3]}...)")
        return
    first = common[0]
    print(f"RESULT first_step={first} loss_align={a_loss[first]:.7f} loss_torch={t_loss[first]:.7f} "
          f"diff={a_loss[first] - t_loss[first]:+.2e}")
    if first in a_norm and first in t_norm:
        print(f"RESULT first_step grad_norm_align={a_norm[first]:.7f} grad_norm_torch={t_norm[first]:.7f} "
              f"rel_diff={(a_norm[first] - t_norm[first]) / max(1e-30, t_norm[first]):+.2e}")
    lr_d = max((abs(a_lr[s] - t_lr[s]) / max(1e-30, abs(t_lr[s])) for s in common if s in a_lr and s in t_lr),
               default=float("nan"))
    print(f"RESULT learning_rate max_rel_diff={lr_d:.2e} over {len(common)} steps")
    last = max(common)
    for lo, hi in sorted({(1, min(10, last)), (1, min(100, last)), (1, last)}):
        d = [abs(a_loss[s] - t_loss[s]) for s in common if lo <= s <= hi]
        if d:
            print(f"RESULT loss steps {lo}-{hi}: max|diff|={max(d):.2e} mean|diff|={sum(d) / len(d):.2e}")
    a_ev = [r for r in al if "eval_loss" in r]
    t_ev = [r for r in th if "eval_loss" in r]
    if a_ev and t_ev:
        ea, et = a_ev[-1]["eval_loss"], t_ev[-1]["eval_loss"]
        print(f"RESULT final eval_loss align={ea:.6f} (step {a_ev[-1]['step']}) torch={et:.6f} "
              f"(step {t_ev[-1]['step']}) diff={ea - et:+.3e}")


# ---------------------------------------------------------------------------------------
# throughput


def mm_gflops(n=2048, reps=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2.0 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    return best


def throughput_gpt2(o):
    """GPT-2 steps: forward + backward of the mean cross-entropy + AdamW (clipping unless --no-clip)."""
    torch.manual_seed(o.seed)
    max_pos = o.max_pos or o.seq
    model = GPT2(o.dim, o.layers, o.heads, o.vocab, max_pos)
    params = list(model.parameters())  # the tied matrix once
    opt = torch.optim.AdamW(params, lr=3e-4, betas=(0.9, o.beta2), eps=1e-8, weight_decay=o.wd)
    g = torch.Generator().manual_seed(o.seed + 1)
    tokens = torch.randint(0, o.vocab, (o.batch, o.seq), generator=g)
    targets = torch.randint(0, o.vocab, (o.batch, o.seq), generator=g)
    N = o.batch * o.seq
    phase = [0.0, 0.0, 0.0]
    losses = []

    def step(timed):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = model(tokens, targets)
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if not o.no_clip:
            torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        t3 = time.perf_counter()
        losses.append(float(loss))
        if timed:
            for i, d in enumerate((t1 - t0, t2 - t1, t3 - t2)):
                phase[i] += d
        return t3 - t0

    for _ in range(o.warmup_steps):
        step(False)
    times = [step(True) for _ in range(o.steps)]
    tps = N * len(times) / sum(times)
    srt = sorted(N / t for t in times)
    median = 0.5 * (srt[(len(srt) - 1) // 2] + srt[len(srt) // 2])
    D, L = o.dim, o.layers
    fpt = 6 * (L * (4 * D * D + 2 * D * 4 * D) + o.vocab * D) + 12 * L * o.seq * D
    res = {"tokens_per_second": tps, "median_step_tokens_per_second": median,
           "best_step_tokens_per_second": N / min(times), "steps": len(times),
           "time_share": {"forward": phase[0] / sum(times), "backward": phase[1] / sum(times),
                          "clip_adamw": phase[2] / sum(times)},
           "loss_first": losses[0], "loss": losses[-1], "n_params": sum(p.numel() for p in params),
           "flops_per_token": fpt, "clip": not o.no_clip,
           "attention": "sdpa" if hasattr(F, "scaled_dot_product_attention") else "matmul+softmax",
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "torch_mm_gflops": mm_gflops() if o.peak else None, "threads": torch.get_num_threads(),
           "torch": torch.__version__}
    print(json.dumps(res))


def throughput(o):
    if o.gpt2:
        return throughput_gpt2(o)
    hf = {"hidden_size": o.dim, "intermediate_size": o.hidden, "num_hidden_layers": o.layers,
          "num_attention_heads": o.heads, "num_key_value_heads": o.kv_heads or o.heads,
          "vocab_size": o.vocab, "max_position_embeddings": o.seq, "rms_norm_eps": 1e-5,
          "rope_theta": 10000.0, "tie_word_embeddings": o.tied}
    cfg = Cfg(hf)
    model = Llama.random(cfg, o.seed)
    params = model.parameters()
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=3e-4, betas=(0.9, 0.95), eps=1e-8)
    g = torch.Generator().manual_seed(o.seed + 1)
    tokens = torch.randint(0, o.vocab, (o.batch, o.seq), generator=g)
    targets = torch.randint(0, o.vocab, (o.batch, o.seq), generator=g)
    N = o.batch * o.seq

    phase = [0.0, 0.0, 0.0]

    def step(timed):
        t0 = time.perf_counter()
        for p in params:
            p.grad = None
        s, _ = model.nll_sum(tokens, targets)
        loss = float(s) / N
        t1 = time.perf_counter()
        (s / N).backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        t3 = time.perf_counter()
        if timed:
            for i, d in enumerate((t1 - t0, t2 - t1, t3 - t2)):
                phase[i] += d
        return loss, t3 - t0

    for _ in range(o.warmup_steps):
        step(False)
    times = []
    for _ in range(o.steps):
        loss, dt = step(True)
        times.append(dt)
    tps = N * len(times) / sum(times)
    srt = sorted(N / t for t in times)
    median = 0.5 * (srt[(len(srt) - 1) // 2] + srt[len(srt) // 2])
    n_params = sum(p.numel() for p in params)
    fpt = 6 * cfg.matmul_params() + 12 * cfg.layers * o.seq * cfg.dim
    res = {"tokens_per_second": tps, "median_step_tokens_per_second": median,
           "best_step_tokens_per_second": N / min(times), "steps": len(times),
           "time_share": {"forward": phase[0] / sum(times), "backward": phase[1] / sum(times),
                          "clip_adamw": phase[2] / sum(times)},
           "loss": loss, "n_params": n_params, "flops_per_token": fpt,
           "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           "torch_mm_gflops": mm_gflops() if o.peak else None, "threads": torch.get_num_threads(),
           "torch": torch.__version__}
    print(json.dumps(res))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", help="an align pretrain output directory (reference mode)")
    ap.add_argument("--out", help="write JSON lines here instead of stdout")
    ap.add_argument("--compare", action="store_true", help="compare with RUN/metrics.jsonl (needs --out)")
    ap.add_argument("--steps", type=int, help="reference: stop after this many steps; throughput: timed steps")
    ap.add_argument("--dump", help="reference: torch.save the final parameters (HF names) here")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--throughput", action="store_true")
    for n, d in (("dim", 256), ("layers", 4), ("heads", 4), ("kv-heads", 0), ("hidden", 688), ("vocab", 8192),
                 ("batch", 8), ("seq", 256), ("warmup-steps", 2), ("seed", 1)):
        ap.add_argument("--" + n, type=int, default=d)
    ap.add_argument("--tied", action="store_true")
    ap.add_argument("--gpt2", action="store_true", help="throughput: the GPT-2 layout (tied, hidden 4*dim)")
    ap.add_argument("--no-clip", action="store_true", help="throughput --gpt2: no gradient clipping")
    ap.add_argument("--max-pos", type=int, default=0, help="throughput --gpt2: position table size (default seq)")
    ap.add_argument("--beta2", type=float, default=0.999, help="throughput --gpt2: AdamW beta2")
    ap.add_argument("--wd", type=float, default=0.0, help="throughput --gpt2: AdamW weight decay")
    ap.add_argument("--peak", action="store_true", help="throughput: also time a 2048^3 torch.mm")
    o = ap.parse_args()
    torch.set_num_threads(o.threads)
    if o.throughput:
        if o.steps is None:
            o.steps = 5
        throughput(o)
    elif o.run_dir:
        if o.compare and not o.out:
            ap.error("--compare needs --out")
        reference(o)
    else:
        ap.error("give --run-dir OUT or --throughput")


if __name__ == "__main__":
    main()
