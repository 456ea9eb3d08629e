"""The lab's trainer against nanoGPT's own train.py, on nanoGPT's README CPU configuration, same run.

Char-level Tiny Shakespeare, 4 layers, 4 heads, 128 wide, context 64, batch 12, dropout 0,
compile=False (nanoGPT's README command for a CPU). nanoGPT is exported from its mirror
(`NANOGPT_GIT`, a bare git dir) to a temporary folder outside the project, its
`data/shakespeare_char/prepare.py` runs on the shared Tiny Shakespeare text, and its `train.py`
runs as nanoGPT's README says, with `--max_iters` set to this bench's iterations.

Three contenders run ALTERNATELY, each in a fresh process (lab, lab fp32, nanoGPT, lab, ...), so a
busy machine slows them alike: the lab's `cpu` preset as the app runs it (bf16 autocast where the CPU
has native bf16, else fp32), the same preset forced to fp32, and nanoGPT. Each reports ms per
iteration (the median of the steps after the first 10; the lab's wall time per step as its loop yields
it, nanoGPT's own `iter N: ... time` lines; both include fetching the batch and reading the loss).
Printed: each contender's best round (a burst of load elsewhere can slow one run), the
lab/nanoGPT speed ratio (target >= 1.2), and, from the lab's seeded runs, the fp32 and bf16
training-loss curves side by side (same seed, same batches).

    python bench/train_vs_nanogpt.py [--iters 250] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

NANOGPT_GIT = os.environ.get("NANOGPT_GIT", "/work/.mirror/karpathy+nanoGPT/repo")
SHAKESPEARE = os.environ.get("SHAKESPEARE", "/work/shared/data/tinyshakespeare.txt")
ROOT = Path(__file__).resolve().parent.parent
SKIP = 10  # warm-up steps left out of each median
ITER_LINE = re.compile(r"^iter (\d+): loss ([\d.]+), time ([\d.]+)ms", re.M)


def lab_run(iters: int, fp32: bool) -> dict:
    """In this (fresh) process: the lab's `cpu` preset for `iters` steps; ms per step and losses."""
    import time
    from dataclasses import replace

    from lab.train import PRESETS, Trainer

    with tempfile.TemporaryDirectory() as out:
        cfg = replace(PRESETS["cpu"], max_iters=iters, lr_decay_iters=iters, eval_interval=10**9, sample_interval=0,
                      out_dir=out, cpu_bf16=PRESETS["cpu"].cpu_bf16 and not fp32)
        t = Trainer(cfg)
        events = t.run()
        ms, losses = [], []
        while True:
            t0 = time.perf_counter()
            ev = next(events, None)
            dt = time.perf_counter() - t0
            if ev is None or ev.stopped:
                break
            if ev.val_loss is None:  # a plain step (the first event also ran the step-0 evaluation)
                ms.append(dt * 1000)
                losses.append(ev.train_loss)
        return {"ms": ms, "losses": losses, "bf16": t.autocast is not None}


def nanogpt_setup(work: Path) -> Path:
    """nanoGPT exported to `work/nanoGPT`, its char-level Shakespeare prepared; returns the folder."""
    repo = work / "nanoGPT"
    repo.mkdir()
    archive = subprocess.run(["git", "--git-dir", NANOGPT_GIT, "archive", "HEAD"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(repo)], input=archive.stdout, check=True)
    data = repo / "data" / "shakespeare_char"
    shutil.copy(SHAKESPEARE, data / "input.txt")  # prepare.py downloads it only when it is missing
    subprocess.run([sys.executable, "prepare.py"], cwd=data, check=True, capture_output=True)
    return repo


def nanogpt_run(repo: Path, iters: int) -> dict:
    """nanoGPT's README CPU command (train.py itself), `iters` iterations; its own per-iteration times."""
    cmd = [sys.executable, "train.py", "config/train_shakespeare_char.py", "--device=cpu", "--compile=False",
           "--eval_iters=20", "--log_interval=1", "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
           "--n_embd=128", f"--max_iters={iters}", f"--lr_decay_iters={iters}", "--dropout=0.0",
           f"--eval_interval={10**9}", f"--out_dir={repo / 'out'}"]
    out = subprocess.run(cmd, cwd=repo, check=True, capture_output=True, text=True).stdout
    rows = [(int(i), float(loss), float(ms)) for i, loss, ms in ITER_LINE.findall(out)]
    # iteration 0's time is measured from before the step-0 evaluation: leave it out, as the lab's is
    return {"ms": [ms for i, _, ms in rows if i > 0], "losses": [loss for _, loss, _ in rows]}


def run_child(kind: str, iters: int, repo: Path | None) -> dict:
    if kind == "nanogpt":
        return nanogpt_run(repo, iters)
    cmd = [sys.executable, __file__, "--child", kind, "--iters", str(iters)]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", choices=["lab", "lab-fp32"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(lab_run(args.iters, fp32=args.child == "lab-fp32")))
        return
    kinds = ["lab", "lab-fp32", "nanogpt"]
    results: dict[str, list[dict]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="nanogpt-bench-") as work:
        repo = nanogpt_setup(Path(work))
        for r in range(args.rounds):
            for kind in kinds:
                res = run_child(kind, args.iters, repo)
                results[kind].append(res)
                med = statistics.median(res["ms"][SKIP:])
                print(f"round {r + 1} {kind:9s} median {med:6.1f} ms/iter, last loss {res['losses'][-1]:.4f}"
                      + (f" (bf16 autocast {res['bf16']})" if "bf16" in res else ""), flush=True)
    # the least disturbed round of each: another process's burst on a shared 2-core machine can slow one
    # whole run several times over (seen here), which a median of two or three rounds does not reject
    med = {k: min(statistics.median(res["ms"][SKIP:]) for res in results[k]) for k in kinds}
    tokens = 12 * 64
    print(f"\n{args.iters} iterations x {args.rounds} rounds, alternating, 12x64 tokens per iteration "
          "(each: its best round's median):")
    for k in kinds:
        print(f"  {k:9s} {med[k]:6.1f} ms/iter  {tokens / med[k] * 1000:8,.0f} tok/s")
    print(f"lab (as the app runs it) vs nanoGPT train.py: {med['nanogpt'] / med['lab']:.2f}x (target >= 1.2)")
    print(f"lab fp32 vs nanoGPT train.py:                {med['nanogpt'] / med['lab-fp32']:.2f}x")
    print(f"lab vs lab fp32:                             {med['lab-fp32'] / med['lab']:.2f}x")
    a, b = results["lab"][0]["losses"], results["lab-fp32"][0]["losses"]
    window = 25
    print(f"seeded loss curve, mean over {window} steps (lab as run / lab fp32; same seed and batches):")
    for lo in range(0, min(len(a), len(b)), max(window, len(a) // 10 // window * window)):
        ma = statistics.fmean(a[lo:lo + window])
        mb = statistics.fmean(b[lo:lo + window])
        print(f"  steps {lo:4d}-{lo + window - 1:4d}: {ma:.4f} / {mb:.4f}  (diff {ma - mb:+.4f})")


if __name__ == "__main__":
    main()
