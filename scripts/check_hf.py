#!/usr/bin/env python3
"""Check microlm's Hugging Face export in PyTorch (issue 31; NOTES.md section 15).

Run from the repository's root, after training the two models:

    cargo run --release --example clm                                   # runs/clm
    cargo run --release --example mlm -- --head-transform true --out runs/mlm-ht
    python scripts/check_hf.py

It needs torch, transformers, tokenizers, safetensors and numpy (pip install torch transformers
safetensors numpy); CI does not run it. Steps:

1. Export both checkpoints with `cargo run --release --example export_hf` (and show that the mlm
   example's default model, without the head transform, is refused with the flag named).
2. Load each with AutoModelForCausalLM / AutoModelForMaskedLM and AutoTokenizer, no custom
   code; compare the logits on held-out text with microlm's (written by the example):
   largest norm-relative error per position, which must be at most 1e-5. The tokenizer must
   give microlm's ids on 4,096 held-out tokens.
3. The causal LM's validation loss over the whole validation split, computed in PyTorch the way
   microlm computes it, then 50 AdamW steps on the training split (microlm's recipe at its final
   learning rate; the position table frozen, since microlm's positions are fixed): the loss goes
   on from microlm's, where a fresh GPT-2 of the same shape starts at ln(vocab).
4. Save the trained model with save_pretrained, import it back with export_hf --import, and
   compare microlm's logits with PyTorch's; the same for the masked LM saved as loaded.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

TOLERANCE = 1e-5


def export_hf(*args):
    """Run the export_hf example; return (exit code, its output)."""
    cmd = ["cargo", "run", "--release", "--quiet", "--example", "export_hf", "--", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


def must_export(*args):
    code, out = export_hf(*args)
    if code != 0:
        sys.exit(f"export_hf {' '.join(args)} failed:\n{out}")
    return out


def relative_error(ours, theirs):
    """Largest over positions of |z_torch - z_microlm| / |z_microlm|."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    return float((np.linalg.norm(theirs - ours, axis=-1) / np.linalg.norm(ours, axis=-1)).max())


def compare(model, reference_path, label):
    """Logits of `model` on the reference's input ids against microlm's; returns the error."""
    ref = json.load(open(reference_path))
    with torch.no_grad():
        z = model(torch.tensor([ref["input_ids"]])).logits[0].numpy()
    err = relative_error(ref["logits"], z)
    verdict = "ok" if err <= TOLERANCE else "TOO LARGE"
    print(f"  {label}: {len(ref['input_ids'])} positions x {z.shape[-1]} ids, "
          f"max norm-relative error {err:.2e} ({verdict}, limit {TOLERANCE:g})")
    return err, ref


def check_tokenizer(directory, ref):
    tok = AutoTokenizer.from_pretrained(directory)
    ids = tok(ref["sample_text"], add_special_tokens=False)["input_ids"]
    same = ids == ref["sample_ids"]
    print(f"  tokenizer ({type(tok).__name__}): {len(ref['sample_ids'])} held-out tokens, "
          f"same ids as microlm: {same}")
    return tok, same


def covering_windows(ids, seq_len):
    """microlm's covering_batches: windows of seq_len starting every seq_len - 1 tokens."""
    starts = range(0, len(ids) - seq_len + 1, seq_len - 1)
    return torch.tensor([ids[s:s + seq_len] for s in starts])


def whole_split_loss(model, windows, rows=64):
    """Mean next-token cross-entropy over every target of the windows, and the count."""
    total, count = 0.0, 0
    with torch.no_grad():
        for k in range(0, len(windows), rows):
            x = windows[k:k + rows]
            z = model(x).logits[:, :-1]
            total += torch.nn.functional.cross_entropy(
                z.reshape(-1, z.shape[-1]), x[:, 1:].reshape(-1), reduction="sum").item()
            count += x[:, 1:].numel()
    return total / count, count


def microlm_last_losses(run_dir):
    """From microlm's metrics.csv: the last validation loss (and its step), and the training
    losses of its last 5 logged steps."""
    rows = [line.strip().split(",") for line in open(os.path.join(run_dir, "metrics.csv"))]
    header, rows = rows[0], rows[1:]
    val, train = header.index("val_loss"), header.index("train_loss")
    done = [r for r in rows if len(r) > val and r[val]]
    return int(done[-1][0]), float(done[-1][val]), [(int(r[0]), float(r[train])) for r in rows[-5:]]


def continue_training(model, train_ids, steps, batch, seq_len, seed):
    """microlm's clm recipe at its final learning rate (the cosine floor 1e-4): AdamW with betas
    (0.9, 0.99), weight decay 0.1 on every matrix, gradients clipped at 1. wpe is frozen."""
    model.transformer.wpe.weight.requires_grad_(False)
    matrices = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]
    others = [p for n, p in model.named_parameters() if p.requires_grad and p.dim() < 2]
    opt = torch.optim.AdamW([{"params": matrices, "weight_decay": 0.1},
                             {"params": others, "weight_decay": 0.0}], lr=1e-4, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(seed)
    data = torch.tensor(train_ids)
    losses = []
    model.train()
    for step in range(1, steps + 1):
        starts = torch.randint(0, len(data) - seq_len, (batch,), generator=gen)
        x = torch.stack([data[s:s + seq_len] for s in starts])
        loss = model(x, labels=x).loss  # transformers shifts the labels: targets x_{t+1}
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clm", default="runs/clm/checkpoint.safetensors")
    ap.add_argument("--mlm", default="runs/mlm-ht/checkpoint.safetensors",
                    help="a masked LM trained with --head-transform true")
    ap.add_argument("--default-mlm", default="runs/mlm/checkpoint.safetensors",
                    help="the mlm example's default model, to show its refusal")
    ap.add_argument("--corpus", default="data/tinyshakespeare.txt")
    ap.add_argument("--out", default="runs/hf-check")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    # The export and import never write over a model: clear this script's own outputs first.
    for name in ["mlm-default", "mlm", "mlm-bpe", "mlm-bpe-run", "clm", "clm-torch", "mlm-saved"]:
        shutil.rmtree(os.path.join(args.out, name), ignore_errors=True)
        for ext in [".safetensors", ".logits.json"]:
            if os.path.exists(os.path.join(args.out, name + ext)):
                os.remove(os.path.join(args.out, name + ext))
    os.makedirs(args.out, exist_ok=True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    ok = True

    print("\n1. The mlm example's default model (no head transform):")
    if os.path.exists(args.default_mlm):
        code, out = export_hf("--from", args.default_mlm, "--to", os.path.join(args.out, "mlm-default"))
        print("  refused, as it should be:" if code != 0 else "  EXPORTED (unexpected):", out.strip().splitlines()[-1])
        ok &= code != 0
    else:
        print(f"  ({args.default_mlm} not found; skipped)")

    print("\n2. Export, load in transformers, compare logits:")
    mlm_dir, clm_dir = os.path.join(args.out, "mlm"), os.path.join(args.out, "clm")
    print("  " + must_export("--from", args.mlm, "--to", mlm_dir, "--corpus", args.corpus).strip().splitlines()[-1])
    mlm = AutoModelForMaskedLM.from_pretrained(mlm_dir).eval()
    mlm_err, ref = compare(mlm, os.path.join(mlm_dir, "microlm_logits.json"), f"{type(mlm).__name__}")
    ok &= mlm_err <= TOLERANCE and check_tokenizer(mlm_dir, ref)[1]
    print("  The same with the byte-level BPE tokenizer (a 20-step masked LM, to check tokenizer.json):")
    bpe_run, bpe_dir = os.path.join(args.out, "mlm-bpe-run"), os.path.join(args.out, "mlm-bpe")
    subprocess.run(["cargo", "run", "--release", "--quiet", "--example", "mlm", "--", "--tokenizer", "bpe",
                    "--head-transform", "true", "--steps", "20", "--eval-every", "20", "--eval-batches", "1",
                    "--corpus", args.corpus, "--out", bpe_run], check=True, capture_output=True)
    must_export("--from", os.path.join(bpe_run, "checkpoint.safetensors"), "--to", bpe_dir, "--corpus", args.corpus)
    bpe = AutoModelForMaskedLM.from_pretrained(bpe_dir).eval()
    bpe_err, ref = compare(bpe, os.path.join(bpe_dir, "microlm_logits.json"), f"{type(bpe).__name__}, BPE")
    ok &= bpe_err <= TOLERANCE and check_tokenizer(bpe_dir, ref)[1]
    print("  " + must_export("--from", args.clm, "--to", clm_dir, "--corpus", args.corpus).strip().splitlines()[-1])
    clm = AutoModelForCausalLM.from_pretrained(clm_dir).eval()
    clm_err, ref = compare(clm, os.path.join(clm_dir, "microlm_logits.json"), f"{type(clm).__name__}")
    tok, same = check_tokenizer(clm_dir, ref)
    ok &= clm_err <= TOLERANCE and same

    print("\n3. The causal LM goes on training in PyTorch:")
    text = open(args.corpus, encoding="utf-8").read()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    n_train = int(len(ids) * 0.9)
    train, val = ids[:n_train], ids[n_train:]
    seq_len = clm.config.n_positions
    windows = covering_windows(val, seq_len)
    step, last_val, last_train = microlm_last_losses(os.path.dirname(args.clm))
    print(f"  microlm: validation loss {last_val:.4f} at its last update ({step}), 20 batches; training loss "
          + ", ".join(f"{loss:.4f} (step {s})" for s, loss in last_train))
    before, count = whole_split_loss(clm, windows)
    print(f"  PyTorch, as exported: {before:.4f} over the whole validation split ({count} targets); "
          f"microlm's clm example prints the same figure at its end")
    fresh = GPT2LMHeadModel(GPT2Config.from_pretrained(clm_dir)).eval()
    fresh_loss, _ = whole_split_loss(fresh, windows[:64])
    print(f"  a fresh GPT-2 of the same shape: {fresh_loss:.4f} (ln {clm.config.vocab_size} = "
          f"{math.log(clm.config.vocab_size):.4f})")
    losses = continue_training(clm, train, args.steps, 12, seq_len, args.seed)
    marks = [1, 2, 3, 5, 10, 20, 30, 40, 50]
    print("  training loss at steps " + ", ".join(f"{s}: {losses[s - 1]:.4f}" for s in marks if s <= len(losses)))
    after, _ = whole_split_loss(clm, windows)
    print(f"  after {args.steps} steps: {after:.4f} over the whole validation split")
    prompt = tok("ROMEO:", return_tensors="pt").input_ids
    with torch.no_grad():
        written = clm.generate(prompt, max_new_tokens=seq_len - prompt.shape[1], do_sample=False)
    print(f"  transformers' generate, greedy, with the exported tokenizer: {tok.decode(written[0])!r}")
    ok &= losses[0] < before + 0.3 and after < before + 0.05

    print("\n4. Back into microlm:")
    trained = os.path.join(args.out, "clm-torch")
    clm.save_pretrained(trained)
    tok.save_pretrained(trained)
    back = os.path.join(args.out, "clm-torch.safetensors")
    print("  " + must_export("--import", trained, "--to", back, "--corpus", args.corpus).strip().splitlines()[0])
    err, _ = compare(clm, back.replace(".safetensors", ".logits.json"), "GPT-2 trained in PyTorch, in microlm")
    ok &= err <= TOLERANCE
    saved = os.path.join(args.out, "mlm-saved")
    mlm.save_pretrained(saved)
    shutil.copy(os.path.join(mlm_dir, "tokenizer.json"), saved)
    back = os.path.join(args.out, "mlm-saved.safetensors")
    print("  " + must_export("--import", saved, "--to", back, "--corpus", args.corpus).strip().splitlines()[0])
    err, _ = compare(mlm, back.replace(".safetensors", ".logits.json"), "Megatron-BERT saved by transformers, in microlm")
    ok &= err <= TOLERANCE

    print("\nall checks passed" if ok else "\nSOME CHECKS FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
