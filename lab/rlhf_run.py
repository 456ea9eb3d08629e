"""The app's RLHF job (lab.rlhf.RLHF): one thread at a time runs a step, the F6 view reads snapshots.

    run = RLHFRun(Path(".../tiny-chat/ckpt.pt"), RLHFConfig())
    run.sample_next()            # 5 rollouts of the next prompt, for a person to rank (view.pending)
    run.commit((2, 0, 4, 1, 3))  # that person's order, best first (a LabError for ties or missing items)
    run.rank_rest()              # or: the simulated person ranks every prompt not ranked yet
    run.train_reward_model(); run.start_rl(); run.stop()
    view = run.snapshot()        # RLHFView: state, message, pending rollouts, curves, over-rated outputs

Every write happens under the run's lock, `snapshot()` copies under it, and `version` grows with every
change. The job's thread is a plain thread owned by the run (not a UI worker), so the app can stop it
on quit; `shutdown()` stops it and writes the RL policy as a tiny-chat checkpoint. Plain Python.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from lab.errors import CancelledError, LabError

IDLE = "idle"


@dataclass(frozen=True)
class RLHFView:
    version: int
    state: str  # "idle" or what the thread is doing ("sampling", "ranking", "training the reward model", "RL against the reward model")
    message: str
    pending: tuple[str, tuple[str, ...]] | None = None  # (prompt, its rollouts) waiting for a person's ranking
    ranked: int = 0
    prompts: int = 0
    cost: str = ""
    rm_accuracy: float | None = None
    has_reward_model: bool = False
    steps: tuple[int, ...] = ()
    rm: tuple[float, ...] = ()
    true: tuple[float, ...] = ()
    over_rated: tuple = ()  # lab.rlhf.OverRated

    @property
    def busy(self) -> bool:
        return self.state != IDLE


class RLHFRun:
    def __init__(self, checkpoint: Path, cfg=None, taste=None) -> None:
        self.checkpoint = Path(checkpoint)
        self.cfg, self.taste = cfg, taste
        self.job = None
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.state, self.message, self.version = IDLE, "", 0
        self.pending = None  # (Prompt, [replies])

    # ---- reading ---------------------------------------------------------------------------
    def snapshot(self) -> RLHFView:
        with self._lock:
            job = self.job
            pending = (self.pending[0].text, tuple(self.pending[1])) if self.pending else None
            if job is None:
                return RLHFView(self.version, self.state, self.message, pending)
            c = job.curves
            return RLHFView(self.version, self.state, self.message, pending, len(job.rankings), len(job.prompts),
                            job.cost().short(), job.rm_accuracy, job.reward_model is not None, tuple(c.steps),
                            tuple(c.rm), tuple(c.true), tuple(job.over_rated))

    @property
    def busy(self) -> bool:
        with self._lock:
            return self.state != IDLE

    def _set(self, **changes) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(self, k, v)
            self.version += 1

    # ---- commands ------------------------------------------------------------------------
    def _begin(self, state: str, work) -> None:
        with self._lock:
            if self.state != IDLE:
                raise LabError(f"busy: {self.state} (x stops it).")
            self.state, self.message = state, f"{state}…"
            self.version += 1
        self.thread = threading.Thread(target=self._run, args=(work,), name="deepdive-rlhf", daemon=True)
        self.thread.start()

    def _run(self, work) -> None:
        try:
            if self.job is None:
                from lab.rlhf import RLHF, simulated_person

                job = RLHF.from_checkpoint(self.checkpoint, self.cfg, self.taste or simulated_person)
                self._set(job=job)
            self.job.cancel.clear()
            message = work(self.job)
            self._set(state=IDLE, message=message)
        except CancelledError:
            self._set(state=IDLE, message="stopped")
        except Exception as exc:  # a LabError says what to do; anything else is reported, never raised into the UI
            text = str(exc) if isinstance(exc, LabError) else f"{exc.__class__.__name__}: {exc}"
            self._set(state=IDLE, message=f"failed: {text}")

    def sample_next(self) -> None:
        """Sample 5 rollouts of the first prompt not ranked yet (they wait in `pending` for `commit`)."""
        if self.pending is not None:
            raise LabError("these rollouts wait for a ranking: 1-5 then enter, or a for the simulated person.")
        def work(job):
            left = [p for p in job.prompts if p.text not in job.rankings]
            if not left:
                return "every prompt is ranked: t trains the reward model"
            prompt, replies = job.sample_for_ranking([left[0]])[0]
            self._set(pending=(prompt, replies))
            return "rank them: 1-5 picks the next best, backspace undoes, enter commits"
        self._begin("sampling", work)

    def commit(self, order) -> None:
        """The person's order of the pending rollouts, best first (0-based); a LabError if it is not a ranking."""
        from lab.rlhf import Ranking

        with self._lock:
            if self.pending is None or self.job is None:
                raise LabError("nothing to rank: n samples the next prompt's rollouts.")
            ranking = Ranking.by_person(self.pending[0], self.pending[1], order)
            self.job.add_ranking(ranking)
            self.pending = None
            self.message = f"ranked {len(self.job.rankings)}/{len(self.job.prompts)} prompts"
            self.version += 1

    def rank_rest(self) -> None:
        """The simulated person ranks every prompt not ranked yet (a person's rankings are kept)."""
        def work(job):
            from lab.rlhf import Ranking

            left = [p for p in job.prompts if p.text not in job.rankings]
            for prompt, replies in job.sample_for_ranking(left) if left else []:
                if job.cancel.is_set():
                    break
                job.add_ranking(Ranking.by_taste(prompt, replies, job.taste))
                self._set(message=f"ranked {len(job.rankings)}/{len(job.prompts)} prompts")
            return f"ranked {len(job.rankings)}/{len(job.prompts)} prompts: t trains the reward model"
        self._set(pending=None)
        self._begin("ranking", work)

    def train_reward_model(self) -> None:
        if self.job is None or not self.job.rankings:
            raise LabError("no rankings yet: n samples rollouts to rank (or a: the simulated person ranks them).")
        def work(job):
            for ev in job.train_reward_model():
                self._set(message=ev.line())
            if job.reward_model is None:
                return "stopped: no reward model"
            acc = "" if job.rm_accuracy is None else f": held-out pair accuracy {job.rm_accuracy:.1%}"
            return f"reward model trained{acc}"
        self._begin("training the reward model", work)

    def start_rl(self) -> None:
        """RL against the reward model, from the SFT model each time (the curves start again)."""
        if self.job is None or self.job.reward_model is None:
            raise LabError("train a reward model first (t).")
        def work(job):
            import copy

            from lab.rlhf import Curves

            if job.reward_model is None:
                raise LabError("train a reward model first (t).")
            with self._lock:
                job.policy, job.curves, job.over_rated = copy.deepcopy(job.sft), Curves(), []
            last = None
            for ev in job.reinforce():
                last = ev
                self._set(message=ev.line())
            if last is None or not job.curves.steps:
                return "RL stopped before its first step (nothing saved)"
            saved = self.save(self.policy_path)
            how = "stopped" if last.phase == "stopped" else (last.text or "finished")
            return f"RL {how} at step {last.step}/{last.total} · policy saved: {saved}"
        self._begin("RL against the reward model", work)

    def stop(self) -> None:
        """Stop what the thread runs (a LabError when nothing runs, so a key can say so)."""
        if not self.busy:
            raise LabError("nothing is running to stop.")
        job = self.job
        if job is not None:
            job.stop()

    @property
    def policy_path(self) -> Path:
        """Where the RL policy is written (when RL stops or ends, and on quit): rlhf/ckpt.pt beside the SFT model."""
        return self.checkpoint.parent / "rlhf" / "ckpt.pt"

    def save(self, path: Path) -> Path:
        """Write the RL policy as a tiny-chat checkpoint (opens wherever tiny-chat does)."""
        from lab.train import save_atomic

        job = self.job
        if job is None:
            raise LabError("nothing to save: no RLHF run yet.")
        path.parent.mkdir(parents=True, exist_ok=True)
        save_atomic({"model": job.policy.state_dict(), "model_config": job.policy.cfg.to_dict(),
                     "corpus_kind": "bpe-chat", "pieces": list(job.vocab.pieces), "step": len(job.curves.steps),
                     "train_config": {}}, path)
        return path

    def shutdown(self, timeout: float = 30.0) -> Path | None:
        """Stop the thread and write the policy (when RL has run) beside the SFT model, as rlhf/ckpt.pt."""
        if self.job is not None:
            self.job.stop()
        if self.thread is not None:
            self.thread.join(timeout)
        if self.job is not None and self.job.curves.steps:
            return self.save(self.policy_path)
        return None
