"""The RLHF view of Post-training (F6): rank rollouts by keys, train a reward model, RL against it.

Keys while it has focus: n samples 5 rollouts of the next prompt; 1-5 picks the next best; backspace
undoes the last pick; enter commits the ranking; a lets the simulated person rank the rest; t trains
the reward model; r starts RL against it; x stops what is running. The job is the app's
(`app.rlhf_run`, lab.rlhf_run.RLHFRun): leaving the screen keeps it going. The panel polls its
snapshots; what it shows is the reactive `view` (the run's latest snapshot) and `order` (the picks).
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.events import Resize
from textual.reactive import reactive
from textual.widgets import Static

from lab.errors import LabError
from lab.rlhf_run import RLHFView
from lab.tokentext import one_line

HELP = ("n: 5 rollouts of the next prompt to rank (1-5 picks the next best, backspace undoes, enter commits) · "
        "a: the simulated person ranks the rest · t: train the reward model · r: RL against it · x: stop")


class RLHFPanel(Vertical, can_focus=True):
    DEFAULT_CSS = """
    RLHFPanel { height: 1fr; }
    RLHFPanel:focus-within { background-tint: $foreground 3%; }
    RLHFPanel #rlhf-head { height: auto; color: $text-muted; }
    RLHFPanel #rlhf-body { height: 1fr; }
    RLHFPanel #rlhf-rank-pane { width: 1fr; margin-right: 2; }
    RLHFPanel #rlhf-right { width: 1fr; }
    RLHFPanel #rlhf-plot { height: 1fr; min-height: 6; }
    RLHFPanel #rlhf-over-pane { height: 1fr; }
    """

    BINDINGS = [
        *[Binding(str(k), f"pick({k - 1})", "Rank", show=k == 1, key_display="1-5", id=f"rlhf.pick{k}",
                  tooltip="Pick this rollout as the next best") for k in range(1, 6)],
        Binding("backspace", "undo", "Undo", show=False, id="rlhf.undo", tooltip="Undo the last pick"),
        Binding("enter", "commit", "Commit", id="rlhf.commit", tooltip="Commit this ranking"),
        Binding("n", "sample", "Rollouts", id="rlhf.sample", tooltip="Sample 5 rollouts of the next prompt to rank"),
        Binding("a", "auto", "Simulated", id="rlhf.auto", tooltip="The simulated person ranks the rest"),
        Binding("t", "train", "Train RM", id="rlhf.train", tooltip="Train the reward model on the rankings"),
        Binding("r", "rl", "RL", id="rlhf.rl", tooltip="RL against the reward model"),
        Binding("x", "stop", "Stop", id="rlhf.stop", tooltip="Stop what is running"),
    ]

    view: reactive[RLHFView | None] = reactive(None, always_update=True)
    order: reactive[tuple[int, ...]] = reactive(())

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._order_for = None  # the pending rollouts `order` ranks

    def compose(self) -> ComposeResult:
        yield Static(id="rlhf-head")
        with Horizontal(id="rlhf-body"):
            with VerticalScroll(id="rlhf-rank-pane"):
                yield Static(id="rlhf-rank")
            with Vertical(id="rlhf-right"):
                yield Static(id="rlhf-plot")
                with VerticalScroll(id="rlhf-over-pane"):
                    yield Static(id="rlhf-over")

    def on_mount(self) -> None:
        self.set_interval(0.25, self.poll)
        self.poll()

    @property
    def run(self):
        from lab.rlhf_run import RLHFRun

        if self.app.rlhf_run is None:  # the app keeps it: the job outlives this screen
            self.app.rlhf_run = RLHFRun(Path(self.app.sft_dir) / "ckpt.pt")
        return self.app.rlhf_run

    def poll(self) -> None:
        run = self.run
        if self.view is None or run.version != self.view.version:
            self.view = run.snapshot()

    # ---- drawing -----------------------------------------------------------------------------
    def watch_view(self, old: RLHFView | None, view: RLHFView | None) -> None:
        if view is None:
            return
        if view.pending != self._order_for:  # other rollouts: the picks were for the ones before
            self._order_for, self.order = view.pending, ()
        rm = "reward model: " + ("not trained (t)" if not view.has_reward_model else
                                 "trained" + ("" if view.rm_accuracy is None else
                                              f", held-out pair accuracy {view.rm_accuracy:.0%} (chance 50%)"))
        ranked = f"ranked {view.ranked}/{view.prompts} prompts" if view.prompts else "tiny-chat loads on the first key"
        doing = f"{view.state}: {view.message}" if view.busy else (view.message or "ready: n samples rollouts to rank")
        head = [f"RLHF · {doing}", f"{ranked} · {rm}", view.cost]
        self.query_one("#rlhf-head", Static).update(Content("\n".join(h for h in head if h)))
        self.draw_ranking()
        self.draw_plot()
        over = ["most over-rated (reward model high, simulated person low):"] if view.over_rated else \
            ["the most over-rated outputs appear once RL runs"]
        for o in view.over_rated:
            over.append(f"step {o.step} · rm {o.rm_score:+.2f} · true {o.true_score:.2f} · {o.prompt}\n  "
                        + one_line(o.reply))
        self.query_one("#rlhf-over", Static).update(Content("\n".join(over)))  # model text: no markup

    def watch_order(self) -> None:
        self.draw_ranking()

    def draw_ranking(self) -> None:
        view = self.view
        if view is None or view.pending is None:
            text = HELP
        else:
            prompt, replies = view.pending
            lines = [f"rank: {prompt}"]
            for k, reply in enumerate(replies):
                place = f"[{self.order.index(k) + 1}]" if k in self.order else "[ ]"
                lines.append(f"{place} {k + 1}: " + one_line(reply))
            picked = " > ".join(str(i + 1) for i in self.order) or "none yet"
            lines.append(f"order so far (best first): {picked}")
            text = "\n".join(lines)
        self.query_one("#rlhf-rank", Static).update(Content(text))

    def on_resize(self, event: Resize) -> None:
        self.draw_plot()

    def draw_plot(self) -> None:
        """Both curves of the RL run on one plot: the reward model's mean score and the simulated person's."""
        plot = self.query_one("#rlhf-plot", Static)
        view = self.view
        if view is None or not view.steps:
            plot.update(Text("The reward model's score and the person's true score are plotted when RL runs.",
                             style="italic"))
            return
        try:
            import plotext as plt

            plt.clf()
            plt.limit_size(False, False)
            plt.plotsize(max(20, plot.size.width), max(6, plot.size.height))
            plt.theme("clear")
            rm = list(view.rm)
            lo, hi = min(rm), max(rm)
            # the reward model's scale is its own: drawn rescaled onto the person's 0-1 axis
            plt.plot(list(view.steps), [(v - lo) / ((hi - lo) or 1) for v in rm], label="reward model (rescaled)",
                     marker="+")
            plt.plot(list(view.steps), list(view.true), label="simulated person", marker="dot")
            plt.xlabel("RL step")
            plt.yticks([0, 0.5, 1])
            plt.title(f"reward model's mean score per step {lo:+.2f}..{hi:+.2f}, drawn on 0..1")
            plot.update(Text.from_ansi(plt.build()))
        except Exception as exc:  # plotting must never take the screen down
            plot.update(Text(f"(the plot could not be drawn: {exc.__class__.__name__}: {exc})"))

    # ---- keys --------------------------------------------------------------------------------
    def _command(self, fn) -> None:
        try:
            fn()
        except LabError as exc:
            self.notify(str(exc), severity="warning")
        self.poll()

    def action_pick(self, k: int) -> None:
        view = self.run.snapshot()  # a key pressed before the next poll still ranks what the run holds
        if view.pending != self._order_for:
            self._order_for, self.order = view.pending, ()
        if view.pending is None:
            self.notify("n samples rollouts to rank first.")
            return
        if k >= len(view.pending[1]):
            self.notify(f"there is no rollout {k + 1}.")
        elif len(self.order) == len(view.pending[1]):
            self.notify("every rollout is placed: enter commits, backspace undoes.")
        elif k in self.order:
            self.notify(f"rollout {k + 1} is already placed {self.order.index(k) + 1}; backspace undoes.")
        else:
            self.order = self.order + (k,)

    def action_undo(self) -> None:
        if not self.order:
            self.notify("no pick to undo." if self.run.snapshot().pending else "nothing is being ranked.")
        self.order = self.order[:-1]

    def action_commit(self) -> None:
        def commit():
            self.run.commit(self.order)
            self.order = ()
        self._command(commit)

    def action_sample(self) -> None:
        self._command(self.run.sample_next)

    def action_auto(self) -> None:
        picks = len(self.order)

        def rank_rest():
            self.run.rank_rest()
            if picks:
                self.notify(f"your {picks} pick{'s' if picks > 1 else ''} for this prompt were dropped: the simulated "
                            "person ranks it with the rest.")
            self.order = ()
        self._command(rank_rest)

    def action_train(self) -> None:
        self._command(self.run.train_reward_model)

    def action_rl(self) -> None:
        self._command(self.run.start_rl)

    def action_stop(self) -> None:
        self._command(self.run.stop)

