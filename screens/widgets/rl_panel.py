"""The Post-training screen's RL view: a live RL run on tiny-chat (lab.rl_run.RLRun on `app.rl_run`).

Keys while it has focus: s start, p pause/resume, x stop (writes a checkpoint), r the update rule
(grpo or keep), c compare base -> SFT -> RL on the same held-out prompts and seed. It shows the pass rate
on train rollouts and on held-out problems per step and the mean response length (as sparklines), the
histogram of groups by how many of their G samples passed, and the current step's rollouts with ✓/✗.
The run belongs to the app: leaving the screen keeps it going; quitting stops it with a checkpoint.
It starts from the SFT run's tiny-chat (`app.sft_dir/ckpt.pt`; trained first if missing) and writes
`<sft_dir>-rl/ckpt.pt`, which opens as a model like tiny-chat.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from lab.errors import LabError
from lab.rl_run import JobView
from lab.tokentext import one_line

BARS = "▁▂▃▄▅▆▇█"
CHECKER_WORDS = ("checker (code): the number after \"The answer is\" (else the first number that is not one of the "
                 "question's) must equal the problem's known answer")


def sparkline(values, lo: float = 0.0, hi: float | None = None, width: int = 60) -> str:
    vals = [v for v in values if v == v][-width:]
    if not vals:
        return "—"
    top = hi if hi is not None else max(vals) or 1.0
    return "".join(BARS[min(len(BARS) - 1, max(0, int((v - lo) / max(top - lo, 1e-9) * (len(BARS) - 1))))]
                   for v in vals)


@dataclass(frozen=True)
class Compared:
    """Each stage's replies to the same prompts (base, SFT, RL), with the checker's verdicts."""

    rows: tuple[tuple[str, str, tuple[tuple[str, bool], ...]], ...]  # (stage, path, ((reply, passed), ...))
    questions: tuple[str, ...]


class RLPanel(Vertical, can_focus=True):
    BINDINGS = [
        Binding("s", "start", "Start RL", id="rl.start", tooltip="Start an RL run on tiny-chat"),
        Binding("p", "pause", "Pause", id="rl.pause", tooltip="Pause or resume the RL run"),
        Binding("x", "stop", "Stop", id="rl.stop", tooltip="Stop the RL run (writes a checkpoint)"),
        Binding("r", "rule", "Rule", id="rl.rule", tooltip="Update rule: grpo or keep the good ones"),
        Binding("c", "compare", "Compare", id="rl.compare", tooltip="Base -> SFT -> RL on the same prompts"),
    ]

    view: reactive[JobView | None] = reactive(None, always_update=True)
    rule: reactive[str] = reactive("grpo")

    def compose(self) -> ComposeResult:
        yield Static(id="rl-readout")
        yield Static(id="rl-curves")
        with VerticalScroll(id="rl-rollouts-pane"):
            yield Static(id="rl-rollouts")

    @property
    def run(self):
        from lab.rl_run import RLRun

        if getattr(self.app, "rl_run", None) is None:
            self.app.rl_run = RLRun()
        return self.app.rl_run

    def on_mount(self) -> None:
        self.set_interval(0.25, self.poll)
        self.poll()

    def poll(self) -> None:
        run = self.run
        if self.view is None or run.version != self.view.version:
            self.view = run.snapshot()

    # ---- drawing ----
    def watch_view(self, old: JobView | None, view: JobView | None) -> None:
        if view is None:
            return
        events = view.events
        steps = [e for e in events if e.attempts]  # the steps that sampled (not the final "stopped" note)
        held = [(e.step, e.held_out) for e in events if e.held_out is not None]
        last = view.last
        head = [f"RL ({self.rule}) · {view.state}"]
        if last is not None:
            head.append(f"step {last.step}/{last.max_steps}")
        if steps:
            head.append(f"pass {steps[-1].pass_rate:.0%}")
        if held:
            head.append(f"held-out {held[0][1]:.0%} → {held[-1][1]:.0%}")
        hint = {"idle": "s start (trains tiny-chat first if there is none) · r rule · c compare base → SFT → RL",
                "running": "p pauses · x stops (writes a checkpoint)",
                "paused": "paused: p resumes · x stops (writes a checkpoint)"}.get(view.state, view.message)
        if view.state in ("stopped", "finished", "failed"):
            hint += " · s starts again"
        self.query_one("#rl-readout", Static).update(Content(" · ".join(head) + "\n" + hint + "\n" + CHECKER_WORDS))
        lengths = [e.mean_length for e in steps]
        hist = steps[-1].histogram if steps else ()
        lines = [f"pass (train)    {sparkline([e.pass_rate for e in steps], 0, 1)}",
                 f"pass (held-out) {sparkline([h for _, h in held], 0, 1)}",
                 f"mean length     {sparkline(lengths)}  {lengths[-1]:.1f} tokens" if lengths else "mean length     —"]
        if hist:
            top = max(hist) or 1
            lines.append(f"groups by samples passed (of {len(hist) - 1}): " + " ".join(
                f"{k}:{BARS[round((len(BARS) - 1) * n / top)] if n else ' '}{n}" for k, n in enumerate(hist)))
        self.query_one("#rl-curves", Static).update(Content("\n".join(lines)))
        if steps:
            shown = [f"── step {steps[-1].step}: its rollouts ──"]
            for a in steps[-1].attempts:
                reply = one_line(a.text)
                shown.append(f"{'✓' if a.passed else '✗'} {a.question}  →  {reply}  (read {a.got}, truth {a.truth})")
            self.query_one("#rl-rollouts", Static).update(Content("\n".join(shown)))

    def watch_rule(self) -> None:
        self.view = self.run.snapshot()

    # ---- commands ----
    def paths(self) -> tuple[Path, Path, Path]:
        """(base before SFT, tiny-chat after SFT, after RL)."""
        sft = Path(self.app.sft_dir)
        return sft / "base" / "ckpt.pt", sft / "ckpt.pt", sft.parent / (sft.name + "-rl") / "ckpt.pt"

    def action_start(self) -> None:
        from lab.rl import PRESETS
        from lab.rl_run import RLRun

        if self.run.active:
            paused = self.run.snapshot().state == "paused"
            self.app.notify("The RL run is paused: p resumes it, x stops it." if paused
                            else "An RL run is already going (x stops it).")
            return
        _, sft, rl = self.paths()
        cfg = getattr(self.app, "rl_config", None) or PRESETS["tiny" if self.rule == "grpo" else "tiny-keep"]
        cfg = replace(cfg, rule=self.rule, base=str(sft), out_dir=str(rl.parent))
        self.app.rl_run = RLRun(sft_config=self.app.sft_config)
        self.app.rl_run.start(cfg)
        self.poll()

    def action_pause(self) -> None:
        try:
            self.app.notify(f"RL run {self.run.toggle_pause()}.")
        except LabError as exc:
            self.app.notify(str(exc), severity="warning")

    def action_stop(self) -> None:
        try:
            self.run.stop()
        except LabError as exc:
            self.app.notify(str(exc), severity="warning")
        self.poll()

    def action_rule(self) -> None:
        if self.run.active:
            self.app.notify("The update rule is fixed while a run goes: x stops it, then r and s.", severity="warning")
            return
        self.rule = "keep" if self.rule == "grpo" else "grpo"
        self.app.notify("update rule: " + ("keep the good ones (SFT on the rollouts that passed)" if self.rule == "keep"
                                           else "grpo (group-normalised policy gradient)"))

    def action_compare(self) -> None:
        if self.run.active:
            self.app.notify("Compare reads the RL checkpoint a run writes when it ends: x stops it first.",
                            severity="warning")
            return
        self.query_one("#rl-rollouts", Static).update(Content("comparing base → SFT → RL on the same prompts…"))
        self.compare()

    @work(thread=True, exclusive=True, exit_on_error=False, group="rl-compare")
    def compare(self) -> Compared:
        from lab.rl import load_chat, problems, verdicts
        from lab.sft import sample_replies

        stages = [(name, p) for name, p in zip(("base", "SFT", "RL"), self.paths()) if p.exists()]
        if len(stages) < 2:
            raise LabError("compare needs at least the SFT model and the RL model: run RL first (s).")
        _, _, tc = load_chat(stages[-1][1])
        _, held = problems(tc, ("apples", "letters", "arithmetic"))
        held = held[:4]
        rows = []
        for name, path in stages:
            model, vocab, _ = load_chat(path)
            replies = sample_replies(model, vocab, held, max_tokens=64, seed=0)
            marks = verdicts(held, [r.text for r in replies])
            rows.append((name, str(path), tuple((r.text, p) for r, (p, _) in zip(replies, marks))))
        return Compared(tuple(rows), tuple(e.question for e in held))

    @on(Worker.StateChanged)
    def compared(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "rl-compare":
            return
        out = self.query_one("#rl-rollouts", Static)
        if event.state == WorkerState.SUCCESS:
            c: Compared = event.worker.result
            lines = ["── compare: the same held-out prompts, seed 0 ──"]
            for i, q in enumerate(c.questions):
                lines.append(q)
                for name, _, replies in c.rows:
                    text, passed = replies[i]
                    lines.append(f"  {name:<4} {'✓' if passed else '✗'} {one_line(text)}")
            out.update(Content("\n".join(lines)))
        elif event.state == WorkerState.ERROR:
            err = event.worker.error
            out.update(Content(str(err) if isinstance(err, LabError) else f"Could not compare: {err.__class__.__name__}"))
