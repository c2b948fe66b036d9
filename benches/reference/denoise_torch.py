"""The PyTorch twin of microlm's denoising recipe (examples/09_denoise.rs), outside the build.

It trains the same encoder-decoder on the very same batches, from the very same initial
weights, with the same optimizer and schedule, and scores the same held-out documents with the
same beam search, so that a gap between its figures and ours is ours or the task's, not the
data's. Everything it reads, the Rust example writes with `--twin DIR`:

    cargo run --release --example denoise -- --twin runs/twin
    $HOME/torchref/bin/python benches/reference/denoise_torch.py runs/twin

The model, written out from src/nn/ (pre-LN, as the example uses):
  x = E[ids] * sqrt(d) + PE[pos]            PE: sin/cos, PE[p, 2i] = sin(p / 10000^(2i/d))
  encoder layer: x += SelfAttn(LN1(x)); x += FFN(LN2(x));        then LN_f
  decoder layer: y += CausalSelfAttn(LN1(y)); y += CrossAttn(LN2(y), m); y += FFN(LN3(y)); LN_f
  FFN(h) = W2 GELU(W1 h + b1) + b2 (exact GELU); logits = y W_out^T + b_out
  attention: softmax(Q K^T / sqrt(d_k)) V per head, keys past a row's length masked
Loss: mean cross-entropy over the target positions that are not padding (-1).
AdamW (beta1 0.9, eps 1e-8, decoupled decay on matrices whose name has no "embedding"),
global-norm clipping with max/(norm + 1e-6), linear warmup then cosine to min_lr.
Beam search: src/beam_search.rs, line for line (2k candidates, EOS finishes within the first
k, score log P / len^alpha, n-gram blocking over the start token and the tokens written).

Prints one JSON line per 50 updates (mean training loss), one per validation, and a final one
with the training loss of the last update, the last 50 updates' mean, the validation loss, and
the reconstruction scores beside the identity baseline.
"""

import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F
from safetensors.torch import load_file


def read_settings(path):
    settings = {}
    for line in open(path):
        key, _, value = line.rstrip("\n").partition(" ")
        settings[key] = value
    return settings


def read_vocab(path):
    vocab = {}
    for line in open(path):
        parts = line.split()
        vocab[int(parts[0])] = bytes.fromhex(parts[1]) if len(parts) > 1 else b""
    return vocab


def ints(text):
    return [int(x) for x in text.split()]


def lines_of(path, follow=0):
    """The lines of `path`; with `follow` = n, wait for n complete lines while a run writes them."""
    if not follow:
        yield from open(path)
        return
    f, pending, seen = open(path), "", 0
    while seen < follow:
        chunk = f.readline()
        if not chunk:
            time.sleep(2.0)
            continue
        pending += chunk
        if pending.endswith("\n"):
            yield pending
            pending, seen = "", seen + 1


def read_batches(path, follow=0):
    """Each line: B S T | source | source lengths | decoder input | lengths | targets."""
    for line in lines_of(path, follow):
        head, src, src_len, dec, dec_len, tgt = line.split(" | ")
        b, s, t = ints(head)
        yield {
            "source": torch.tensor(ints(src)).view(b, s),
            "source_len": torch.tensor(ints(src_len)),
            "decoder_input": torch.tensor(ints(dec)).view(b, t),
            "decoder_len": torch.tensor(ints(dec_len)),
            "targets": torch.tensor(ints(tgt)).view(b, t),
        }


def sinusoidal(max_len, d):
    pe = torch.zeros(max_len, d, dtype=torch.float64)
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]
    two_i = torch.arange(0, d, 2, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, two_i / d)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()


class Model(torch.nn.Module):
    """The encoder-decoder; parameters are a dict under microlm's names."""

    def __init__(self, weights, s):
        super().__init__()
        self.p = torch.nn.ParameterDict({k.replace(".", "/"): torch.nn.Parameter(v.clone()) for k, v in weights.items()})
        self.d, self.h, self.layers = int(s["d_model"]), int(s["heads"]), int(s["layers"])
        self.eps = float(s["layer_norm_eps"])
        self.scale = math.sqrt(self.d) if s["scale_embeddings"] == "true" else 1.0
        self.pe = sinusoidal(int(s["max_len"]), self.d) * float(s["position_scale"])
        assert s["norm"] == "pre" and s["tie"] == "false" and s["activation"] == "gelu", "twin covers the example's shape"

    def w(self, name):
        return self.p[name.replace(".", "/")]

    def ln(self, name, x):
        return F.layer_norm(x, (self.d,), self.w(name + ".weight"), self.w(name + ".bias"), self.eps)

    def linear(self, name, x):
        return F.linear(x, self.w(name + ".weight"), self.w(name + ".bias"))

    def attention(self, name, xq, xkv, key_len, causal):
        b, tq, _ = xq.shape
        tk = xkv.shape[1]
        dk = self.d // self.h
        split = lambda x, t: x.view(b, t, self.h, dk).transpose(1, 2)
        q = split(self.linear(name + ".q_proj", xq), tq)
        k = split(self.linear(name + ".k_proj", xkv), tk)
        v = split(self.linear(name + ".v_proj", xkv), tk)
        scores = q @ k.transpose(-1, -2) / math.sqrt(dk)  # [B, H, Tq, Tk]
        allowed = torch.arange(tk)[None, :] < key_len[:, None]  # [B, Tk]
        allowed = allowed[:, None, None, :].expand(b, 1, tq, tk)
        if causal:
            allowed = allowed & torch.ones(tq, tk, dtype=torch.bool).tril()[None, None]
        scores = scores.masked_fill(~allowed, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return self.linear(name + ".out_proj", out.transpose(1, 2).reshape(b, tq, self.d))

    def ffn(self, name, x):
        return self.linear(name + ".linear2", F.gelu(self.linear(name + ".linear1", x)))

    def embed(self, name, ids):
        return F.embedding(ids, self.w(name + ".token_embedding.weight")) * self.scale + self.pe[: ids.shape[1]]

    def encode(self, source, source_len):
        x = self.embed("encoder", source)
        for l in range(self.layers):
            n = f"encoder.layers.{l}"
            x = x + self.attention(n + ".self_attn", self.ln(n + ".norm1", x), self.ln(n + ".norm1", x), source_len, False)
            x = x + self.ffn(n + ".feed_forward", self.ln(n + ".norm2", x))
        return self.ln("encoder.final_norm", x)

    def decode(self, memory, source_len, y_in, y_len):
        y = self.embed("decoder", y_in)
        for l in range(self.layers):
            n = f"decoder.layers.{l}"
            h = self.ln(n + ".norm1", y)
            y = y + self.attention(n + ".self_attn", h, h, y_len, True)
            y = y + self.attention(n + ".cross_attn", self.ln(n + ".norm2", y), memory, source_len, False)
            y = y + self.ffn(n + ".feed_forward", self.ln(n + ".norm3", y))
        return self.linear("decoder.lm_head", self.ln("decoder.final_norm", y))

    def forward(self, batch):
        memory = self.encode(batch["source"], batch["source_len"])
        return self.decode(memory, batch["source_len"], batch["decoder_input"], batch["decoder_len"])


def loss_of(model, batch, reduction="mean"):
    logits = model(batch)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["targets"].reshape(-1), ignore_index=-1, reduction=reduction)


def lr_at(step, s):
    peak, floor, warmup, total = float(s["lr"]), float(s["min_lr"]), int(s["warmup"]), int(s["steps"])
    if step < warmup:
        return peak * (step + 1) / warmup
    span = max(total - 1.0 - warmup, 1.0)
    p = min((step - warmup) / span, 1.0)
    return floor + 0.5 * (1.0 + math.cos(math.pi * p)) * (peak - floor)


def validate(model, val_batches):
    total, count = 0.0, 0
    with torch.no_grad():
        for b in val_batches:
            total += loss_of(model, b, "sum").item()
            count += int((b["targets"] >= 0).sum())
    return total / max(count, 1)


def blocked_by_ngrams(seq, n):
    if n == 0 or len(seq) < n:
        return set()
    tail = seq[len(seq) - (n - 1):]
    return {seq[i + n - 1] for i in range(len(seq) - n + 1) if seq[i:i + n - 1] == tail}


def beam_search(model, source, s, max_new):
    """src/beam_search.rs: k hypotheses, 2k candidates, EOS finishes within the first k.

    The prompt is the start token (and BOS under BART, given rather than written)."""
    k, alpha, n = int(s["beam_width"]), float(s["length_penalty"]), int(s["no_repeat_ngram"])
    eos, banned, prompt = int(s["eos"]), set(ints(s["banned"])), ints(s["prompt"])
    src = torch.tensor(source)[None]
    src_len = torch.tensor([len(source)])
    with torch.no_grad():
        memory = model.encode(src, src_len)
    finish = lambda tokens, lp: (tokens, lp, lp / (max(len(tokens), 1) ** alpha))
    live = [([], 0.0)]
    finished = []
    for _ in range(max_new):
        ys = torch.tensor([prompt + t for t, _ in live])
        with torch.no_grad():
            logits = model.decode(memory.expand(len(live), -1, -1), src_len.expand(len(live)), ys,
                                  torch.full((len(live),), ys.shape[1]))[:, -1].double()
        candidates = []
        for h, (tokens, lp) in enumerate(live):
            excluded = blocked_by_ngrams(prompt + tokens, n) | banned
            allowed = [i for i in range(logits.shape[1]) if i not in excluded]
            row = logits[h, allowed]
            log_z = row.max() + torch.log(torch.exp(row - row.max()).sum())
            for i, z in zip(allowed, (row - log_z).tolist()):
                candidates.append((lp + z, h, i))
        candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
        nxt = []
        for rank, (lp, h, i) in enumerate(candidates[: 2 * k]):
            tokens = live[h][0] + [i]
            if i == eos:
                if rank < k:
                    finished.append(finish(tokens, lp))
            elif len(nxt) < k:
                nxt.append((tokens, lp))
        live = nxt
        if len(finished) >= k or not live:
            break
    if len(finished) < k:
        finished += [finish(t, lp) for t, lp in live]
    best = 0
    for i in range(1, len(finished)):
        if finished[i][2] > finished[best][2]:
            best = i
    return finished[best][0]


def edit_distance(a, b):
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        cur = [i + 1] + [0] * len(b)
        for j, cb in enumerate(b):
            cur[j + 1] = min(prev[j] + (ca != cb), prev[j + 1] + 1, cur[j] + 1)
        prev = cur
    return prev[len(b)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", help="what the Rust example wrote with --twin")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--score", type=int, default=200, help="held-out documents reconstructed")
    ap.add_argument("--follow", action="store_true", help="train while the Rust run is still writing batches.txt")
    ap.add_argument("--decode-only", metavar="CHECKPOINT",
                    help="no training: score microlm's trained checkpoint with this script's beam search")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    d = args.dir
    s = read_settings(os.path.join(d, "settings.txt"))
    vocab = read_vocab(os.path.join(d, "vocab.txt"))
    model = Model(load_file(os.path.join(d, "init.safetensors")), s)
    val = list(read_batches(os.path.join(d, "val_batches.txt")))
    if args.decode_only:
        trained = load_file(args.decode_only)
        model = Model({k: trained[k] for k in load_file(os.path.join(d, "init.safetensors"))}, s)
        report = {"checkpoint": args.decode_only, "val_loss": round(validate(model, val), 4)}
        report.update(score(model, s, vocab, d, args.score))
        print(json.dumps(report), flush=True)
        return
    decay, no_decay = [], []
    for key, p in model.p.items():
        name = key.replace("/", ".")
        matrix = p.dim() >= 2 and ("embedding" not in name or s["decay_embeddings"] == "true")
        (decay if matrix else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": float(s["weight_decay"])},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=float(s["lr"]), betas=(0.9, float(s["beta2"])), eps=1e-8)
    clip = float(s["grad_clip"])
    print(json.dumps({"step": 0, "val_loss": round(validate(model, val), 4)}), flush=True)
    t0, window, last, recent = time.time(), [], None, []
    follow = int(s["steps"]) if args.follow else 0
    for step, batch in enumerate(read_batches(os.path.join(d, "batches.txt"), follow)):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, s)
        loss = loss_of(model, batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        last = loss.item()
        window.append(last)
        recent = (recent + [last])[-50:]
        if (step + 1) % 50 == 0:
            print(json.dumps({"step": step + 1, "loss": round(sum(window) / len(window), 4),
                              "elapsed_s": round(time.time() - t0, 1)}), flush=True)
            window = []
        if (step + 1) % args.eval_every == 0:
            print(json.dumps({"step": step + 1, "val_loss": round(validate(model, val), 4)}), flush=True)
    steps = step + 1
    val_loss = validate(model, val)

    report = {"steps": steps, "last_loss": round(last, 4), "last_50_mean": round(sum(recent) / len(recent), 4),
              "val_loss": round(val_loss, 4), "train_s": round(time.time() - t0, 1)}
    report.update(score(model, s, vocab, d, args.score))
    print(json.dumps(report), flush=True)


def score(model, s, vocab, d, count):
    """Beam-search the held-out examples; CER and exact match beside the identity baseline."""
    specials = set(ints(s["banned"])) | {int(s["eos"])}
    plain = lambda ids: b"".join(vocab.get(i, b"") for i in ids if i not in specials).decode("utf-8", "replace")
    sums = {"model": [0, 0, 0], "identity": [0, 0, 0]}  # edits, characters, exact
    examples = [line.split(" | ") for line in open(os.path.join(d, "val_examples.txt"))][:count]
    t1 = time.time()
    for source, target in examples:
        source, target = ints(source), ints(target)
        written = beam_search(model, source, s, min(len(target) + 8, int(s["max_len"]) - len(ints(s["prompt"]))))
        reference = plain(target)
        for name, text in (("model", plain(written)), ("identity", plain(source))):
            sums[name][0] += edit_distance(text, reference)
            sums[name][1] += len(reference)
            sums[name][2] += int(text == reference)
    n = len(examples)
    return {"documents": n,
            "cer": round(sums["model"][0] / sums["model"][1], 4),
            "identity_cer": round(sums["identity"][0] / sums["identity"][1], 4),
            "exact": round(sums["model"][2] / n, 4), "identity_exact": round(sums["identity"][2] / n, 4),
            "decode_s": round(time.time() - t1, 1)}


if __name__ == "__main__":
    main()
