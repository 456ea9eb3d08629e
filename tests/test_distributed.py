"""Distributed training through torchrun, on this CPU with gloo: two ranks train what one process trains.

Two ranks each train half of the same seeded global batch and DistributedDataParallel averages their
gradients; one process trains the whole batch. The arithmetic is the same up to float32 rounding (the
mean of two half-batch means, and gloo's sum of two gradients, round differently from one mean over
the batch), so after six steps the losses agree to ~5e-7 and the weights to ~3e-7 (measured here): the
tolerances below (LOSS_TOL, WEIGHT_TOL) leave room for that and are far below what the six steps change
(~1e-3 of a weight, checked in the test).
"""

import re
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from lab.distributed import World, split_batch
from lab.errors import LabError
from lab.train import PRESETS, Trainer, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
STEPS = 6
LOSS_TOL = 1e-4  # printed losses have 4 decimals: half a unit in the last place, plus rounding
WEIGHT_TOL = 1e-5  # max |difference| of any weight after the run (the weights are ~0.02-1 in size)
HANG_GUARD_S = 600  # only to catch a hang; a slow machine is fine

# The CLI's `train --preset cpu-quick` with the flags below, as a config (what one process runs in-test).
FLAGS = ["--iters", str(STEPS), "--eval-interval", "3", "--sample-interval", "0", "--seed", "11"]
CONFIG = replace(PRESETS["cpu-quick"], max_iters=STEPS, lr_decay_iters=STEPS, eval_interval=3, sample_interval=0,
                 seed=11, device="cpu")


def cli(*args: str, nproc: int | None = None) -> subprocess.CompletedProcess:
    """`deepdive-lab --device cpu train ... [--nproc N]` from this worktree, to the end."""
    extra = ["--nproc", str(nproc)] if nproc else []
    return subprocess.run([sys.executable, "-m", "deepdive_lab", "--device", "cpu", "train", "--preset", "cpu-quick",
                           *args, *extra], cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD_S)


def printed_losses(stdout: str) -> dict[int, float]:
    return {int(s): float(v) for s, v in re.findall(r"^step (\d+)/\d+ · loss (\d+\.\d+)", stdout, re.M)}


def max_weight_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def run_single(cfg) -> tuple[Trainer, list]:
    t = Trainer(cfg)
    return t, list(t.run())


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One run of 2 gloo ranks through `deepdive-lab train --nproc 2`: (its stdout, its checkpoint)."""
    out = tmp_path_factory.mktemp("two-ranks")
    done = cli(*FLAGS, "--out", str(out), nproc=2)
    assert done.returncode == 0, done.stderr
    return done.stdout, out / "ckpt.pt"


def test_two_gloo_ranks_train_what_one_process_trains(two_ranks, tmp_path):
    stdout, ckpt = two_ranks
    assert "on 2 processes (cpu)" in stdout and "tok/s global, 2 processes" in stdout
    assert len(re.findall("^training ", stdout, re.M)) == 1 and stdout.count("stopped: done") == 1  # rank 0 alone prints
    single, events = run_single(replace(CONFIG, out_dir=str(tmp_path)))
    losses = printed_losses(stdout)
    reference = {e.step: e.train_loss for e in events if e.train_loss is not None}
    assert sorted(losses) == sorted(reference) == list(range(STEPS))
    assert all(abs(losses[s] - reference[s]) <= LOSS_TOL for s in reference), (losses, reference)
    assert reference[STEPS - 1] < reference[0] - 0.05  # the steps really trained
    final_val = float(re.search(rf"^step {STEPS}/{STEPS} · val (\d+\.\d+)", stdout, re.M).group(1))
    assert final_val == pytest.approx(events[-1].val_loss, abs=LOSS_TOL)  # evaluation sharded, then averaged
    saved = load_checkpoint(ckpt)
    assert saved["step"] == STEPS
    assert max_weight_difference(saved["model"], single.model.state_dict()) <= WEIGHT_TOL
    first = single.model.state_dict()
    start = Trainer(replace(CONFIG, out_dir=str(tmp_path / "start"))).model.state_dict()
    assert max_weight_difference(first, start) > 20 * WEIGHT_TOL  # ... and the tolerance is far below the run's change


def test_gradient_accumulation_trains_the_same_batch(tmp_path):
    """One process, the batch of 16 in 4 micro-batches of 4: the same step as one pass of 16."""
    whole, whole_events = run_single(replace(CONFIG, out_dir=str(tmp_path / "whole")))
    parts, part_events = run_single(replace(CONFIG, out_dir=str(tmp_path / "parts"), micro_batch=4))
    assert parts.accumulate == 4
    whole_losses = [e.train_loss for e in whole_events if e.train_loss is not None]
    part_losses = [e.train_loss for e in part_events if e.train_loss is not None]
    assert len(whole_losses) == STEPS and part_losses == pytest.approx(whole_losses, abs=1e-5)
    assert max_weight_difference(whole.model.state_dict(), parts.model.state_dict()) <= WEIGHT_TOL


def reference_resumed(tmp_path) -> dict:
    """One process for STEPS steps, then resumed in one process for STEPS more: the weights."""
    first, _ = run_single(replace(CONFIG, out_dir=str(tmp_path / "ref")))
    again = Trainer.resume_from(first.checkpoint_path(), max_iters=2 * STEPS, lr_decay_iters=2 * STEPS)
    list(again.run())
    return again.model.state_dict()


def test_a_checkpoint_of_two_ranks_resumes_in_one_process_and_one_of_one_in_two(two_ranks, tmp_path):
    _, ckpt = two_ranks
    reference = reference_resumed(tmp_path)
    # 2 -> 1: the two ranks' checkpoint continues in this process
    one = Trainer.resume_from(ckpt, max_iters=2 * STEPS, lr_decay_iters=2 * STEPS, out_dir=str(tmp_path / "2to1"))
    assert one.step == STEPS and one.world.size == 1
    list(one.run())
    assert max_weight_difference(one.model.state_dict(), reference) <= WEIGHT_TOL
    # 1 -> 2: a one-process checkpoint continues on two ranks
    single, _ = run_single(replace(CONFIG, out_dir=str(tmp_path / "1to2")))
    done = cli("--resume", str(single.checkpoint_path()), "--iters", str(2 * STEPS), nproc=2)
    assert done.returncode == 0, done.stderr
    assert sorted(printed_losses(done.stdout)) == list(range(STEPS, 2 * STEPS))
    saved = load_checkpoint(single.checkpoint_path())
    assert saved["step"] == 2 * STEPS
    assert max_weight_difference(saved["model"], reference) <= WEIGHT_TOL


class LongRun:
    """`deepdive-lab train --nproc 2` of 2,000 steps, read as it goes; killed with its ranks on exit."""

    def __init__(self, out: Path, *flags: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "deepdive_lab", "--device", "cpu", "train", "--preset",
                                      "cpu-quick", "--iters", "2000", "--eval-interval", "1000", "--sample-interval",
                                      "0", "--out", str(out), "--nproc", "2", *flags],
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.seen: list[str] = []

    def __enter__(self) -> "LongRun":
        return self

    def until_step(self, step: int) -> None:
        for line in self.proc.stdout:  # rank 0's events, as they happen
            self.seen.append(line)
            if line.startswith(f"step {step}/"):
                return
        raise AssertionError(f"the run ended before step {step}: " + "".join(self.seen[-5:]))

    def ranks(self) -> dict:
        import psutil  # comes with accelerate, a dependency

        return {p.environ()["RANK"]: p for p in psutil.Process(self.proc.pid).children(recursive=True)
                if "RANK" in p.environ()}

    def finish(self) -> tuple[str, str]:
        """(all of stdout, stderr) once the launcher has exited."""
        rest, err = self.proc.communicate(timeout=HANG_GUARD_S)
        return "".join(self.seen) + rest, err

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            for child in self.ranks().values():
                child.kill()
            self.proc.kill()
            self.proc.communicate()


def test_a_rank_killed_mid_run_stops_the_run_with_its_name_and_the_checkpoint_intact(tmp_path):
    out = tmp_path / "run"
    with LongRun(out, "--checkpoint-interval", "4") as run:
        run.until_step(9)  # past the checkpoints after steps 4 and 8
        ranks = run.ranks()
        assert set(ranks) == {"0", "1"}, ranks
        ranks["1"].send_signal(signal.SIGKILL)
        stdout, err = run.finish()
    proc = run.proc
    assert proc.returncode == 1
    assert "rank 1 was killed by SIGKILL" in err and "the run of 2 processes stopped" in err
    assert "Traceback" not in err
    found = re.search(r"The last checkpoint, after (\d+) steps, is intact: (\S+) \(continue it with --resume", err)
    assert found, err
    steps, path = int(found.group(1)), Path(found.group(2))
    assert path == out / "ckpt.pt" and steps % 4 == 0 and steps >= 8
    assert f"checkpoint {path}" in stdout
    saved = load_checkpoint(path)  # whole, and it loads
    assert saved["step"] == steps and not list(out.glob("*.tmp*"))
    resumed = Trainer.resume_from(path, max_iters=steps + 1, out_dir=str(tmp_path / "again"))
    assert list(resumed.run())[-1].stopped == "done"


def test_ctrl_c_stops_every_rank_at_a_step_and_rank_0_writes_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    with LongRun(out) as run:
        run.until_step(5)
        run.proc.send_signal(signal.SIGINT)  # what Ctrl+C sends the launcher; torchrun passes it on
        stdout, err = run.finish()
    assert run.proc.returncode == 130 and "interrupted: every rank was asked to stop" in err
    stopped = re.search(r"^step (\d+)/2000 .*\ncheckpoint (\S+)\nstopped: stopped$", stdout, re.M)
    assert stopped, stdout[-500:]
    assert Path(stopped.group(2)) == out / "ckpt.pt"
    assert load_checkpoint(out / "ckpt.pt")["step"] == int(stopped.group(1)) >= 6
    assert "Traceback" not in err and not list(out.glob("*.tmp*"))


def test_the_global_batch_must_split_evenly_and_is_said_before_any_process_starts():
    assert split_batch(12, 2) == 6 and split_batch(12, 2, micro=3) == 6
    with pytest.raises(LabError, match="does not split evenly over 5 processes"):
        split_batch(12, 5)
    with pytest.raises(LabError, match="micro-batches of 4"):
        split_batch(12, 2, micro=4)
    done = cli("--batch", "15", nproc=2)
    assert done.returncode == 1 and "a global batch of 15 sequences does not split evenly over 2" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_place_in_a_run_comes_from_torchrun_environment():
    assert World.from_env({}) == World(0, 1, 0) and not World().distributed
    w = World.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (w.rank, w.size, w.local_rank, w.distributed, w.main) == (3, 4, 1, True, False)
    assert w.shard(12) == (9, 12) and World(0, 4, 0).shard(12) == (0, 3)
    with pytest.raises(LabError, match="not a place in a run"):
        World.from_env({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(LabError, match="whole numbers"):
        World.from_env({"RANK": "x", "WORLD_SIZE": "2"})


async def test_the_training_screen_shows_the_world_size_and_global_tokens_per_second():
    """Fed the events of rank 0 of a 2-process run, the readout and the sparkline's label say so (80x24)."""
    from lab.train import TrainEvent
    from lab.training_run import TrainingRun
    from tests.helpers import make_test_app, shown

    app = make_test_app(load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await pilot.pause()
        run = TrainingRun("cpu-quick")
        run._set(state="running")  # what its worker does once the trainer is built
        for step in range(3):
            run.record(TrainEvent(step, 400, train_loss=4.0 - step / 10, tokens_per_sec=52_000.0 + step, lr=1e-4,
                                  eta=9.0, world_size=2))
        app.training = run
        await pilot.pause(0.6)  # the screen polls the run four times a second
        text = shown(app.screen.query_one("#train-readout"))
        assert "step 2/400" in text and "52,002 tok/s global" in text and "world size 2" in text
        assert shown(app.screen.query_one("#train-tps-label")) == "global tokens/s (2 processes)"
        run.record(TrainEvent(400, 400, val_loss=1.9, eval_train_loss=1.8, stopped="done", checkpoint="/x/ckpt.pt",
                              world_size=2))
        await pilot.pause(0.6)
        text = shown(app.screen.query_one("#train-readout"))
        assert "finished: 400 steps" in text and "world size 2" in text and "tok/s" not in text
        single = TrainingRun("cpu-quick")
        single._set(state="running")
        single.record(TrainEvent(0, 400, train_loss=4.0, tokens_per_sec=9_000.0))
        app.training = single
        await pilot.pause(0.6)
        text = shown(app.screen.query_one("#train-readout"))
        assert "9,000 tok/s ·" in text and "global" not in text and "world size" not in text
        assert shown(app.screen.query_one("#train-tps-label")) == "tokens/s"
