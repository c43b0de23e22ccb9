#!/usr/bin/python3
"""A TRL-style GRPO loop in PyTorch, the peer of `align grpo` in bench/rl.sh.

It does the work of one GRPOTrainer step (TRL, num_iterations = 1, no vLLM) on stories260K
(the llama2.c checkpoint, read here), written out in plain PyTorch on the CPU:
  generation  Hugging Face-style incremental decoding: the prompts, each repeated G times,
              left-padded to one batch (attention mask, positions = cumsum(mask) - 1), one
              prefill forward, then one forward per new token over a KV cache (preallocated
              per layer, as transformers' StaticCache; --cache dynamic concatenates each
              step, as DynamicCache), softmax(logits / T) and torch.multinomial, finished
              rows padded until every row is done or max_new tokens are out;
  scoring     the completions decoded (the llama2.c tokenizer, run.c's decoding), the same
              regex reward as align's regex:PAT (1 when re.search finds it, else 0), and
              group-normalized advantages (r - mean) / (std + 1e-4);
  reference   the frozen reference model's forward under no_grad, per-token log-probs of
              the completion tokens (logits only where completion tokens are predicted,
              as TRL's logits_to_keep);
  training    the policy's forward with gradients, the GRPO loss (clipped surrogate with
              ratio exp(logp - logp.detach()), k3 KL to the reference times beta, each
              sequence's masked mean then the batch mean: loss_type "grpo"), backward,
              clip_grad_norm_(1.0), torch.optim.AdamW (lr 1e-5, betas 0.9/0.95, no weight
              decay, as align grpo's defaults).
Each phase is timed with time.perf_counter around it; the step-1 timings are not averaged.

Modes (one JSON line each, prefixed RESULT, for bench/rl.sh):
  --rollout-reps R   rollout throughput: P x G sequences of --rollout-new tokens, no stop
                     token (as bench_rl's), median tokens/s of R runs after one warm-up
  --steps S          S RL steps of P x G sequences of up to --max-new tokens, stopping at
                     EOS; mean phase times over steps 2..S

The model code (Cfg, rms_norm, rotate_half: Hugging Face's Llama arithmetic) is
bench/torch_train.py's.  Run with Debian's interpreter (/usr/bin/python3, python3-torch).
"""
import argparse
import json
import math
import os
import re
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import Cfg, rms_norm, rotate_half  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(HERE, "..", "..", "shared", "models", "stories260K")

# ---------------------------------------------------------------------------------------
# llama2.c files


def read_llama2c(path):
    """(HF config dict, {HF name: tensor}) of a llama2.c checkpoint.  q/k rows are permuted
    from llama2.c's interleaved rotary layout into HF's rotate_half layout, as transformers'
    convert_llama_weights_to_hf.py does."""
    with open(path, "rb") as f:
        blob = f.read()
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack_from("<7i", blob, 0)
    tied = vocab > 0
    vocab = abs(vocab)
    hd = dim // heads
    w = np.frombuffer(blob, dtype="<f4", offset=28)
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        t = torch.from_numpy(w[off:off + n].copy()).reshape(shape)
        off += n
        return t

    def permute(t, n_heads):
        rows, cols = t.shape
        return t.view(n_heads, rows // n_heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)

    emb = take(vocab, dim)
    rms_att = take(layers, dim)
    wq = take(layers, heads * hd, dim)
    wk = take(layers, kv_heads * hd, dim)
    wv = take(layers, kv_heads * hd, dim)
    wo = take(layers, dim, heads * hd)
    rms_ffn = take(layers, dim)
    w1 = take(layers, hidden, dim)
    w2 = take(layers, dim, hidden)
    w3 = take(layers, hidden, dim)
    rms_final = take(dim)
    off += seq_len * hd  # freq_cis_real and freq_cis_imag (seq_len x hd/2 each)
    t = {"model.embed_tokens.weight": emb, "model.norm.weight": rms_final}
    for l in range(layers):
        p = f"model.layers.{l}."
        t[p + "input_layernorm.weight"] = rms_att[l]
        t[p + "self_attn.q_proj.weight"] = permute(wq[l], heads)
        t[p + "self_attn.k_proj.weight"] = permute(wk[l], kv_heads)
        t[p + "self_attn.v_proj.weight"] = wv[l]
        t[p + "self_attn.o_proj.weight"] = wo[l]
        t[p + "post_attention_layernorm.weight"] = rms_ffn[l]
        t[p + "mlp.gate_proj.weight"] = w1[l]
        t[p + "mlp.down_proj.weight"] = w2[l]
        t[p + "mlp.up_proj.weight"] = w3[l]
    if not tied:
        t["lm_head.weight"] = take(vocab, dim)
    hf = {"hidden_size": dim, "intermediate_size": hidden, "num_hidden_layers": layers,
          "num_attention_heads": heads, "num_key_value_heads": kv_heads, "vocab_size": vocab,
          "max_position_embeddings": seq_len, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
          "tie_word_embeddings": tied}
    return hf, t


class Tokenizer:
    """llama2.c's tokenizer.bin: run.c's encode() (dummy prefix, UTF-8 symbols with byte
    fallback, greedy best-score merges) and decode() (space stripped after BOS, <0xXX>)."""

    def __init__(self, path, vocab_size):
        with open(path, "rb") as f:
            blob = f.read()
        off = 4  # max_token_length
        self.pieces, self.scores = [], []
        for _ in range(vocab_size):
            score, n = struct.unpack_from("<fi", blob, off)
            off += 8
            self.pieces.append(blob[off:off + n])
            self.scores.append(score)
            off += n
        self.lookup = {p: i for i, p in enumerate(self.pieces)}
        self.bos, self.eos = 1, 2

    def encode(self, text, bos=True):
        ids = [self.bos] if bos else []
        if not text:
            return ids
        syms = [self.lookup[b" "]]
        data = text.encode("utf-8")
        i = 0
        while i < len(data):
            j = i + 1
            while j < len(data) and j - i < 4 and (data[j] & 0xC0) == 0x80:
                j += 1
            ch = data[i:j]
            if ch in self.lookup:
                syms.append(self.lookup[ch])
            else:
                syms.extend(b + 3 for b in ch)
            i = j
        while True:
            best, best_id, best_at = -1e10, -1, -1
            for k in range(len(syms) - 1):
                m = self.lookup.get(self.pieces[syms[k]] + self.pieces[syms[k + 1]])
                if m is not None and self.scores[m] > best:
                    best, best_id, best_at = self.scores[m], m, k
            if best_at < 0:
                break
            syms[best_at:best_at + 2] = [best_id]
        return ids + syms

    def decode(self, prev, ids):
        out = []
        for t in ids:
            piece = self.pieces[t]
            if prev == self.bos and piece.startswith(b" "):
                piece = piece[1:]
            m = re.fullmatch(rb"<0x([0-9A-Fa-f]{2})>", piece)
            out.append(bytes([int(m.group(1), 16)]) if m else piece)
            prev = t
        return b"".join(out).decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------
# the model, with padding masks, positions and a KV cache (transformers' LlamaModel math)


class Model:
    def __init__(self, cfg, tensors, trainable):
        self.cfg = cfg
        self.p = {n: tensors[n].to(torch.float32).clone().contiguous().requires_grad_(trainable)
                  for n, _ in cfg.names()}
        hd = cfg.head_dim
        inv_freq = 1.0 / (cfg.theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
        freqs = torch.outer(torch.arange(cfg.max_pos, dtype=torch.int64).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos, self.sin = emb.cos(), emb.sin()
        self.neg = torch.finfo(torch.float32).min

    def parameters(self):
        return list(self.p.values())

    def trunk(self, tokens, pos, allowed, cache=None, start=0):
        """tokens, pos [B, S]; allowed [B, S, K] bool (query s may read key k), K = start + S
        with a cache (keys 0..start-1 from it), else K = S.  Returns the final norm's output."""
        c, p = self.cfg, self.p
        B, S = tokens.shape
        hd, Hq, Hkv = c.head_dim, c.heads, c.kv_heads
        cos, sin = self.cos[pos].unsqueeze(1), self.sin[pos].unsqueeze(1)  # [B, 1, S, hd]
        bias = torch.zeros(allowed.shape, dtype=torch.float32).masked_fill_(~allowed, self.neg).unsqueeze(1)
        x = F.embedding(tokens, p["model.embed_tokens.weight"])
        for l in range(c.layers):
            pre = f"model.layers.{l}."
            h = rms_norm(x, p[pre + "input_layernorm.weight"], c.eps)
            q = F.linear(h, p[pre + "self_attn.q_proj.weight"]).view(B, S, Hq, hd).transpose(1, 2)
            k = F.linear(h, p[pre + "self_attn.k_proj.weight"]).view(B, S, Hkv, hd).transpose(1, 2)
            v = F.linear(h, p[pre + "self_attn.v_proj.weight"]).view(B, S, Hkv, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            if cache is not None:
                k, v = cache.update(l, k, v, start)
            if Hkv != Hq:  # repeat_kv
                k = k.repeat_interleave(Hq // Hkv, dim=1)
                v = v.repeat_interleave(Hq // Hkv, dim=1)
            q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
            att = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(hd) + bias
            att = torch.softmax(att, dim=-1)
            y = torch.matmul(att, v).transpose(1, 2).reshape(B, S, Hq * hd)
            x = x + F.linear(y, p[pre + "self_attn.o_proj.weight"])
            h = rms_norm(x, p[pre + "post_attention_layernorm.weight"], c.eps)
            g = F.linear(h, p[pre + "mlp.gate_proj.weight"])
            u = F.linear(h, p[pre + "mlp.up_proj.weight"])
            x = x + F.linear(F.silu(g) * u, p[pre + "mlp.down_proj.weight"])
        return rms_norm(x, p["model.norm.weight"], c.eps)

    def lm_head(self, h):
        w = self.p["model.embed_tokens.weight"] if self.cfg.tied else self.p["lm_head.weight"]
        return F.linear(h, w)


class StaticCache:
    """Keys and values preallocated [B, Hkv, L, hd] per layer; a step writes its slice."""

    def __init__(self, cfg, B, L):
        self.k = [torch.zeros(B, cfg.kv_heads, L, cfg.head_dim) for _ in range(cfg.layers)]
        self.v = [torch.zeros(B, cfg.kv_heads, L, cfg.head_dim) for _ in range(cfg.layers)]

    def update(self, l, k, v, start):
        end = start + k.shape[2]
        self.k[l][:, :, start:end] = k
        self.v[l][:, :, start:end] = v
        return self.k[l][:, :, :end], self.v[l][:, :, :end]


class DynamicCache:
    """transformers' DynamicCache: torch.cat of every step's keys and values."""

    def __init__(self, cfg, B, L):
        self.k = [None] * cfg.layers
        self.v = [None] * cfg.layers

    def update(self, l, k, v, start):
        if self.k[l] is None:
            self.k[l], self.v[l] = k, v
        else:
            self.k[l] = torch.cat([self.k[l], k], dim=2)
            self.v[l] = torch.cat([self.v[l], v], dim=2)
        return self.k[l], self.v[l]


def left_pad(rows, pad=0):
    Lp = max(len(r) for r in rows)
    ids = torch.full((len(rows), Lp), pad, dtype=torch.int64)
    mask = torch.zeros(len(rows), Lp, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, Lp - len(r):] = torch.tensor(r, dtype=torch.int64)
        mask[i, Lp - len(r):] = True
    return ids, mask


@torch.no_grad()
def generate(model, rows, max_new, temperature, gen, eos=None, cache_kind="static"):
    """HF generate(do_sample=True) on left-padded rows.  Returns (prompt ids [B, Lp], prompt
    mask, completion ids [B, C] (pad 0 after EOS), completion mask [B, C] (up to and
    including EOS), sampled tokens)."""
    ids, mask = left_pad(rows)
    B, Lp = ids.shape
    L = Lp + max_new
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
    valid = torch.zeros(B, L, dtype=torch.bool)
    valid[:, :Lp] = mask
    causal = torch.ones(Lp, Lp, dtype=torch.bool).tril()
    cache = (StaticCache if cache_kind == "static" else DynamicCache)(model.cfg, B, L)
    h = model.trunk(ids, pos, causal.unsqueeze(0) & mask.unsqueeze(1), cache, 0)
    logits = model.lm_head(h[:, -1])  # logits of the last position only
    nxt_pos = pos[:, -1] + 1
    unfinished = torch.ones(B, dtype=torch.bool)
    out = []
    for t in range(max_new):
        probs = torch.softmax(logits / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        if eos is not None:
            nxt = torch.where(unfinished, nxt, torch.zeros_like(nxt))
            out.append(nxt)
            unfinished &= nxt != eos
            if not bool(unfinished.any()):
                break
        else:
            out.append(nxt)
        if t == max_new - 1:
            break
        valid[:, Lp + t] = True
        h = model.trunk(nxt.unsqueeze(1), nxt_pos.unsqueeze(1), valid[:, :Lp + t + 1].unsqueeze(1), cache, Lp + t)
        logits = model.lm_head(h[:, -1])
        nxt_pos = nxt_pos + 1
    comp = torch.stack(out, dim=1)
    if eos is not None:  # mask: tokens up to and including the first EOS
        is_eos = comp == eos
        after = (is_eos.long().cumsum(1) - is_eos.long()) > 0
        cmask = ~after
    else:
        cmask = torch.ones_like(comp, dtype=torch.bool)
    return ids, mask, comp, cmask, int(cmask.sum())


def completion_logps(model, p_ids, p_mask, comp, cmask, temperature):
    """Per-token log-probs [B, C] of the completion tokens (logits only at the C positions
    that predict them, TRL's logits_to_keep)."""
    ids = torch.cat([p_ids, comp], dim=1)
    mask = torch.cat([p_mask, cmask], dim=1)
    B, T = ids.shape
    Lp, C = p_ids.shape[1], comp.shape[1]
    pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
    allowed = torch.ones(T, T, dtype=torch.bool).tril().unsqueeze(0) & mask.unsqueeze(1)
    h = model.trunk(ids, pos, allowed)
    logits = model.lm_head(h[:, Lp - 1:Lp - 1 + C]) / temperature
    return torch.log_softmax(logits, dim=-1).gather(-1, comp.unsqueeze(-1)).squeeze(-1)


# ---------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(SHARED, "stories260K.bin"))
    ap.add_argument("--tokenizer", default=os.path.join(SHARED, "tok512.bin"))
    ap.add_argument("--prompts", default=os.path.join(HERE, "data", "rl_prompts.jsonl"))
    ap.add_argument("--prompts-per-step", type=int, default=8)
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--rollout-new", type=int, default=128)
    ap.add_argument("--rollout-reps", type=int, default=0)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--max-new", type=int, default=64)
    ap.add_argument("--reward", default="regex:happy|fun|smile")
    ap.add_argument("--beta", type=float, default=0.04)
    ap.add_argument("--epsilon", type=float, default=0.2)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--cache", choices=["static", "dynamic"], default="static")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    o = ap.parse_args()
    torch.set_num_threads(o.threads)
    torch.manual_seed(o.seed)
    if not o.reward.startswith("regex:"):
        raise SystemExit("torch_rl.py: only regex:PAT rewards")
    pattern = re.compile(o.reward[len("regex:"):])

    hf, tensors = read_llama2c(o.model)
    cfg = Cfg(hf)
    tok = Tokenizer(o.tokenizer, cfg.vocab)
    prompts = [json.loads(line)["prompt"] for line in open(o.prompts) if line.strip()]
    encoded = [tok.encode(s) for s in prompts]
    P, G = o.prompts_per_step, o.generations
    policy = Model(cfg, tensors, trainable=True)
    gen = torch.Generator().manual_seed(o.seed)

    if o.rollout_reps > 0:
        rows = [encoded[p] for p in range(P) for _ in range(G)]
        generate(policy, rows, o.rollout_new, o.temperature, gen, None, o.cache)  # warm-up
        tps, secs = [], []
        for _ in range(o.rollout_reps):
            t0 = time.perf_counter()
            *_, n_tok = generate(policy, rows, o.rollout_new, o.temperature, gen, None, o.cache)
            dt = time.perf_counter() - t0
            tps.append(n_tok / dt)
            secs.append(dt)
        print("rollout: %d sequences x %d new tokens: %.0f tok/s (median of %d runs: %s)" % (
            P * G, o.rollout_new, float(np.median(tps)), len(tps), ", ".join("%.0f" % x for x in tps)))
        print("RESULT " + json.dumps({"mode": "rollout", "sequences": P * G, "new_tokens": o.rollout_new,
                                      "prompt_tokens": sum(len(encoded[p]) for p in range(P)),
                                      "tokens_per_s": float(np.median(tps)), "all_tokens_per_s": tps,
                                      "seconds": secs, "threads": o.threads, "cache": o.cache}), flush=True)

    if o.steps > 0:
        ref = Model(cfg, tensors, trainable=False)
        opt = torch.optim.AdamW(policy.parameters(), lr=o.lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
        cursor = 0
        rows_out = []
        for step in range(1, o.steps + 1):
            idx = [(cursor + p) % len(encoded) for p in range(P)]
            cursor += P
            rows = [encoded[i] for i in idx for _ in range(G)]
            t0 = time.perf_counter()
            p_ids, p_mask, comp, cmask, n_tok = generate(policy, rows, o.max_new, o.temperature, gen, tok.eos,
                                                         o.cache)
            t1 = time.perf_counter()
            # scoring: decode (without the stop token), the reward, group advantages
            rewards = []
            for i in range(len(rows)):
                n = int(cmask[i].sum())
                ids = comp[i, :n].tolist()
                if ids and ids[-1] == tok.eos:
                    ids = ids[:-1]
                text = tok.decode(rows[i][-1], ids).strip()
                rewards.append(1.0 if pattern.search(text) else 0.0)
            r = torch.tensor(rewards, dtype=torch.float32).view(P, G)
            adv = ((r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + 1e-4)).view(-1)
            t2 = time.perf_counter()
            with torch.no_grad():
                ref_logp = completion_logps(ref, p_ids, p_mask, comp, cmask, o.temperature)
            t3 = time.perf_counter()
            logp = completion_logps(policy, p_ids, p_mask, comp, cmask, o.temperature)
            ratio = torch.exp(logp - logp.detach())
            clipped = torch.clamp(ratio, 1 - o.epsilon, 1 + o.epsilon)
            a = adv.unsqueeze(1)
            per_token = -torch.min(ratio * a, clipped * a)
            d = ref_logp - logp
            per_token = per_token + o.beta * (torch.exp(d) - d - 1)
            m = cmask.float()
            loss = ((per_token * m).sum(1) / m.sum(1).clamp(min=1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            opt.step()
            t4 = time.perf_counter()
            row = {"step": step, "generation": t1 - t0, "scoring": t2 - t1, "reference": t3 - t2,
                   "training": t4 - t3, "rollout_tokens_per_s": n_tok / (t1 - t0),
                   "mean_length": n_tok / len(rows), "reward": float(r.mean()), "loss": float(loss),
                   "grad_norm": float(gnorm)}
            rows_out.append(row)
            if step == 1:
                print("  step  generation   scoring  reference  training     total  rollout tok/s  mean length")
            print("  %4d %11.4f %9.5f %10.4f %9.4f %9.4f %14.0f %12.1f%s" % (
                step, row["generation"], row["scoring"], row["reference"], row["training"],
                row["generation"] + row["scoring"] + row["reference"] + row["training"],
                row["rollout_tokens_per_s"], row["mean_length"], "  (first: not averaged)" if step == 1 else ""),
                flush=True)
        later = rows_out[1:] if len(rows_out) > 1 else rows_out
        mean = {k: float(np.mean([x[k] for x in later]))
                for k in ("generation", "scoring", "reference", "training", "rollout_tokens_per_s", "mean_length")}
        mean["total"] = mean["generation"] + mean["scoring"] + mean["reference"] + mean["training"]
        print("  mean %11.4f %9.5f %10.4f %9.4f %9.4f %14.0f %12.1f  (steps 2..%d)" % (
            mean["generation"], mean["scoring"], mean["reference"], mean["training"], mean["total"],
            mean["rollout_tokens_per_s"], mean["mean_length"], len(rows_out)))
        print("RESULT " + json.dumps({"mode": "step", "steps_averaged": len(later), "threads": o.threads,
                                      "cache": o.cache, **mean}), flush=True)


if __name__ == "__main__":
    main()
