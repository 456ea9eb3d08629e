"""Training engine on the real corpus: loss falls, checkpoints reload, resume, NaN, the tiny backend."""

import math
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from lab import catalogue
from lab.train import PRESETS, Trainer, save_atomic

TINY = replace(PRESETS["cpu-quick"], max_iters=60, lr_decay_iters=60, eval_interval=30, eval_iters=10,
               sample_interval=30, seed=7)


def run(trainer):
    return list(trainer.run())


def test_loss_decreases_within_a_few_dozen_steps(tmp_path):
    events = run(Trainer(replace(TINY, out_dir=str(tmp_path))))
    losses = [e.train_loss for e in events if e.train_loss is not None]
    assert len(losses) == 60
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.5
    vals = [e.val_loss for e in events if e.val_loss is not None]
    assert vals[-1] < vals[0] - 0.5
    assert events[-1].stopped == "done" and os.path.exists(events[-1].checkpoint)
    samples = [e.sample for e in events if e.sample is not None]
    assert len(samples) == 3 and all(isinstance(s, str) and s for s in samples)
    assert events[0].device == "cpu" and events[5].tokens_per_sec > 0


def test_checkpoint_reloads_to_the_same_val_loss_and_resume_continues(tmp_path):
    t = Trainer(replace(TINY, out_dir=str(tmp_path)))
    run(t)
    path = t.checkpoint_path()
    torch.manual_seed(0)
    t.generator.manual_seed(123)
    ref = t.evaluate()
    r = Trainer.resume_from(path, max_iters=80, lr_decay_iters=80)
    assert r.step == 60
    r.generator.manual_seed(123)
    assert r.evaluate() == pytest.approx(ref, abs=1e-6)
    events = run(r)
    steps = [e.step for e in events if e.train_loss is not None]
    assert steps[0] == 60 and steps[-1] == 79 and events[-1].stopped == "done"


def test_interrupted_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    t = Trainer(replace(TINY, out_dir=str(tmp_path), max_iters=5))
    run(t)
    path = t.checkpoint_path()
    before = path.read_bytes()

    def crash(obj, f, *a, **k):
        with open(f, "wb") as out:
            out.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_atomic({"x": 1}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_nan_injection_stops_with_the_reason(tmp_path):
    t = Trainer(replace(TINY, out_dir=str(tmp_path), max_iters=50))
    events = []
    for ev in t.run():
        events.append(ev)
        if ev.step == 10:
            with torch.no_grad():
                t.model.wte.weight[3, 0] = float("nan")  # poison the weights mid-run
    assert events[-1].stopped.startswith("nan")
    assert events[-1].step < 20


def test_exploding_loss_is_detected(tmp_path):
    t = Trainer(replace(TINY, out_dir=str(tmp_path), max_iters=200, learning_rate=50.0, warmup_iters=0,
                        grad_clip=0.0))
    last = run(t)[-1]
    assert last.stopped.startswith(("nan", "exploding"))


def test_tiny_model_opens_as_a_catalogue_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPDIVE_LAB_CACHE", str(tmp_path))
    t = Trainer(replace(TINY, out_dir=str(tmp_path / "tiny")))
    run(t)
    b = catalogue.load("tiny")
    assert b.info.architecture == "tiny-gpt" and b.info.vocab_size == len(t.corpus.pieces)
    ids = b.tokenize("ROMEO:\nWhat")
    dist = b.next_token(ids, top_k=b.info.vocab_size)  # every token of the vocabulary
    assert math.isclose(sum(t.prob for t in dist.top), 1.0, abs_tol=1e-6)
    assert b.generate(ids, max_tokens=5).ids
    assert any(e.name == "tiny" for e in catalogue.discover())
    from lab.errors import LabError

    with pytest.raises(LabError, match="never saw"):
        b.tokenize("日本語")  # characters it never saw: a clear error


def test_cli_train_prints_events(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "deepdive_lab", "train", "--preset", "cpu-quick", "--iters", "20",
                          "--eval-interval", "10", "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert "step 10/20" in out and "val " in out and "stopped: done" in out
    assert (tmp_path / "ckpt.pt").exists()
