"""Training engine on the real corpus: loss falls, checkpoints reload, resume, NaN, the tiny backend."""

import math
import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from lab import catalogue
from lab.train import PRESETS, Trainer, save_atomic

# On the CPU on every machine: exact reloads and seeded comparisons hold there (a GPU's kernels may differ).
TINY = replace(PRESETS["cpu-quick"], max_iters=60, lr_decay_iters=60, eval_interval=30, eval_iters=10,
               sample_interval=30, seed=7, device="cpu")


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


def test_a_model_retrained_at_the_same_path_and_step_is_another_model_to_the_caches(tmp_path, monkeypatch):
    """The talk's saved samples and logits are keyed by model_identity: the same path and step, other
    weights, must not replay the first model's numbers."""
    from lab.runs import model_identity

    monkeypatch.setenv("DEEPDIVE_LAB_CACHE", str(tmp_path))
    run(Trainer(replace(TINY, out_dir=str(tmp_path / "tiny"), max_iters=4)))
    first = catalogue.load("tiny")
    again = catalogue.load("tiny")
    run(Trainer(replace(TINY, out_dir=str(tmp_path / "tiny"), max_iters=4, seed=8)))
    retrained = catalogue.load("tiny")
    assert first.info.source == retrained.info.source  # the same path and step ...
    assert model_identity(first) == model_identity(again) != model_identity(retrained)  # ... other weights


def test_cli_train_prints_events(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "deepdive_lab", "train", "--preset", "cpu-quick", "--iters", "20",
                          "--eval-interval", "10", "--out", str(tmp_path)], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert "step 10/20" in out and "val " in out and "stopped: done" in out
    assert (tmp_path / "ckpt.pt").exists()


class _RunsCode:
    """Pickles as a call to os.mkdir: what a hostile checkpoint hides."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_checkpoint_whose_pickle_runs_code_is_refused_and_the_code_does_not_run(tmp_path):
    from lab.errors import LabError
    from lab.train import load_checkpoint

    marker = tmp_path / "the-code-ran"
    evil = tmp_path / "ckpt.pt"
    torch.save({"model": _RunsCode(marker), "step": 1}, evil)
    with pytest.raises(LabError, match=r"refused: loading it would run \S*mkdir") as err:
        load_checkpoint(evil)
    assert "weights only" in str(err.value) and not marker.exists()
    with pytest.raises(LabError, match="refused"):  # --resume and opening it as a model go the same way
        Trainer.resume_from(evil)
    with pytest.raises(LabError, match="refused"):
        catalogue.load(str(evil))
    assert not marker.exists()
    torch.load(evil, weights_only=False)  # the premise: a full unpickle does run it
    assert marker.is_dir()


def test_a_checkpoint_that_needs_a_full_unpickle_gets_a_clear_message(tmp_path):
    from lab.errors import LabError
    from lab.train import load_checkpoint

    old = tmp_path / "old.pt"
    torch.save({"model": {}, "pieces": np.array([1, 2, 3])}, old)  # a numpy array: not weights-only
    with pytest.raises(LabError, match=r"needs a full unpickle \(it holds numpy\S+\)") as err:
        load_checkpoint(old)
    assert "not a checkpoint the lab wrote" in str(err.value) and "torch.save" in str(err.value)  # what to do instead
    assert "weights_only=False" not in str(err.value)  # never advice to unpickle a file in full


def test_checkpoints_hold_only_tensors_and_plain_values(tmp_path):
    t = Trainer(replace(TINY, out_dir=str(tmp_path), max_iters=3))
    run(t)
    ckpt = torch.load(t.checkpoint_path(), map_location="cpu", weights_only=True)  # torch's own check
    assert ckpt["step"] == 3 and ckpt["pieces"] == t.corpus.pieces
    assert ckpt["model_config"] == t.model_cfg.to_dict()


def test_a_new_run_keeps_the_previous_checkpoint_and_resume_continues_in_place(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPDIVE_LAB_CACHE", str(tmp_path))
    out = tmp_path / "tiny"
    first = Trainer(replace(TINY, out_dir=str(out), max_iters=4))
    run(first)
    before = (out / "ckpt.pt").read_bytes()
    second = Trainer(replace(TINY, out_dir=str(out), max_iters=6, seed=8))
    run(second)
    kept = sorted(out.glob("ckpt-*.pt"))
    assert kept == [second.kept_previous] and kept[0].read_bytes() == before
    assert torch.load(out / "ckpt.pt", weights_only=True)["step"] == 6
    assert "step 6" in catalogue.load("tiny").info.source  # the catalogue opens the latest
    resumed = Trainer.resume_from(out / "ckpt.pt", max_iters=8, lr_decay_iters=8)
    run(resumed)  # continuing a file replaces it in place: no extra copy
    assert sorted(out.glob("ckpt-*.pt")) == kept and resumed.kept_previous is None
    assert torch.load(out / "ckpt.pt", weights_only=True)["step"] == 8


def test_the_training_run_reports_stopped_and_every_snapshot_is_consistent(tmp_path):
    import threading

    from lab.training_run import TrainingRun

    tr = TrainingRun()
    tr.start(replace(TINY, out_dir=str(tmp_path), max_iters=100000, lr_decay_iters=100000))
    seen = []
    done = threading.Event()

    def reader():  # reads while the worker writes: every snapshot is whole
        while not done.is_set():
            v = tr.snapshot()
            seen.append((len(v.steps), len(v.losses), len(v.tps), len(v.val_steps), len(v.val_losses)))

    th = threading.Thread(target=reader)
    th.start()
    while len(tr.snapshot().steps) < 40:
        tr.thread.join(0.05)
    tr.stop()
    tr.thread.join(60)
    done.set()
    th.join()
    view = tr.snapshot()
    assert view.state == "stopped" and view.message.startswith(f"stopped at step {view.last.step} (checkpoint saved)")
    assert "finished" not in view.message
    assert all(a == b == c and d == e for a, b, c, d, e in seen) and len(seen) > 10
    with pytest.raises(Exception, match="no run to stop"):
        tr.stop()


def test_only_the_newest_kept_checkpoints_stay(tmp_path):
    import os

    from lab.train import KEEP_PREVIOUS, keep_previous

    ckpt = tmp_path / "ckpt.pt"
    kept = []
    for i in range(KEEP_PREVIOUS + 2):
        ckpt.write_bytes(f"run {i}".encode())
        os.utime(ckpt, (1_000_000 + i * 60, 1_000_000 + i * 60))  # each run a minute later
        kept.append(keep_previous(ckpt))
        ckpt.unlink()
    left = sorted(p.read_bytes() for p in tmp_path.glob("ckpt-*.pt"))
    assert left == [f"run {i}".encode() for i in range(2, KEEP_PREVIOUS + 2)]


def test_no_bf16_autocast_when_torchs_kernels_are_held_below_avx512():
    """ATEN_CPU_CAPABILITY=avx2 (or an AVX2-only CPU) emulates bf16: the `cpu` preset must stay fp32."""
    import subprocess
    import sys

    code = "from lab.train import cpu_has_native_bf16; print(cpu_has_native_bf16())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "ATEN_CPU_CAPABILITY": "avx2"}).stdout.strip()
    assert out == "False"


def test_cpu_bf16_autocast_follows_the_cpu_and_keeps_the_seeded_loss_curve(tmp_path):
    """`cpu_bf16` (the `cpu` preset's setting) autocasts only where the CPU has native bf16, and a
    seeded run's losses stay within noise of the same run in fp32, computed here side by side."""
    from lab.train import cpu_has_native_bf16

    cfg = replace(TINY, max_iters=30, lr_decay_iters=30, eval_interval=30, sample_interval=0)
    fast = Trainer(replace(cfg, cpu_bf16=True, out_dir=str(tmp_path / "bf16")))
    plain = Trainer(replace(cfg, cpu_bf16=False, out_dir=str(tmp_path / "fp32")))
    assert PRESETS["cpu"].cpu_bf16 and not plain.autocast
    assert (fast.autocast is torch.bfloat16) == cpu_has_native_bf16()
    a = [e.train_loss for e in run(fast) if e.train_loss is not None]
    b = [e.train_loss for e in run(plain) if e.train_loss is not None]
    assert len(a) == len(b) == 30
    assert max(abs(x - y) for x, y in zip(a, b)) < 0.05
    assert np.mean(a[-5:]) < np.mean(a[:5]) - 0.3  # it learns in bf16 as well
