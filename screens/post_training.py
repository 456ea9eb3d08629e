"""Post-training (first part): conversations as tokens with the loss mask, and a live SFT run.

Views (v switches): the dataset, one conversation of the lab's SFT set at a time, rendered by
the chat model's own template and tokenizer with the loss mask drawn on the tokens (n / b: next,
previous); and the run, the tiny GPT pretrained then finetuned into `tiny-chat` (s start, p pause,
x stop), with the loss plot, tokens/s and the samples of held-out questions at each evaluation.
The rlhf view is screens.widgets.rlhf_panel (rank rollouts, a reward model, RL against it).
o opens Base vs chat with the model before SFT as the base and after it as the chat model.
The run belongs to the app (`lab.sft_run.SFTRun`): leaving the screen does not stop it.
"""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import ContentSwitcher, ProgressBar, RichLog, Static
from textual.worker import Worker, WorkerState

from lab.errors import LabError
from lab.sft_data import conversation_index, default_set
from lab.training_run import RunView
from lab.tokentext import one_line, visible
from screens.commands import ScreenCommands
from screens.training import TrainingScreen
from screens.widgets import ModelStatus
from screens.widgets.conversation_view import ConversationShown, ConversationView
from screens.widgets.key_bar import KeyBar
from screens.widgets.loss_plot import LossPlot
from screens.widgets.rl_panel import RLPanel
from screens.widgets.rlhf_panel import RLHFPanel

PRESET = "cpu-quick"
VIEWS = ("dataset", "run", "experiment", "rl", "rlhf")
CHECKER_WORDS = ('checker (code, the Failures screen\'s): the number after "The answer is" (else the first number '
                 "that is not one of the question's) must equal the price computed from the question")


class PostTrainingScreen(Screen):
    area_title = "Post-training"
    COMMANDS = {ScreenCommands}

    BINDINGS = [
        Binding("v", "switch_view", "View", id="post.view", tooltip="Dataset, run or experiment view"),
        Binding("n", "step(1)", "Next", id="post.next", tooltip="Next conversation"),
        Binding("b", "step(-1)", "Back", id="post.back", tooltip="Previous conversation"),
        Binding("s", "start", "Start", id="post.start", tooltip="Pretrain then finetune the tiny GPT"),
        Binding("p", "pause", "Pause", id="post.pause", tooltip="Pause or resume the run"),
        Binding("x", "stop", "Stop", id="post.stop", tooltip="Stop the run (writes a checkpoint)"),
        Binding("e", "experiment", "Experiment", id="post.experiment",
                tooltip="Answer-first vs working-first SFT, scored on held-out problems"),
        Binding("o", "before_after", "Compare", id="post.compare",
                tooltip="Base vs chat with the model before SFT and after it"),
    ]

    view_name: reactive[str] = reactive("dataset")
    index: reactive[int] = reactive(0)
    run_view: reactive[RunView | None] = reactive(None, always_update=True)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.examples = default_set(seed=0, style="working")
        self._samples_shown = 0

    @property
    def run(self):
        from lab.sft_run import SFTRun

        if self.app.sft_run is None:
            self.app.sft_run = SFTRun(PRESET)  # the app keeps it: the run outlives this screen
        return self.app.sft_run

    def compose(self) -> ComposeResult:
        yield ModelStatus()
        yield Static(id="post-views")
        with ContentSwitcher(initial="post-dataset", id="post-switch"):
            with VerticalScroll(id="post-dataset"):
                yield ConversationView(id="post-conversation")
            with Vertical(id="post-run"):
                yield Static(id="post-readout")
                yield ProgressBar(id="post-bar", show_eta=False, total=1)  # (no total: a pulsing bar before the run)
                yield LossPlot(id="post-plot")
                yield RichLog(id="post-samples", wrap=True, max_lines=2000)
            with Vertical(id="post-experiment"):
                yield Static(id="post-exp-head")
                with Horizontal(id="post-exp-panes"):
                    with VerticalScroll(id="post-exp-answer-pane"):
                        yield Static(id="post-exp-answer")
                    with VerticalScroll(id="post-exp-working-pane"):
                        yield Static(id="post-exp-working")
            yield RLPanel(id="post-rl")
            with Vertical(id="post-rlhf"):
                yield RLHFPanel(id="rlhf-panel")  # RLHF: its own keys while it has focus
        yield KeyBar()

    def on_mount(self) -> None:
        self.app.models_changed.subscribe(self, lambda _=None: self.render_conversation(self.index))
        self.render_conversation(self.index)
        self.set_interval(0.25, self.poll)
        self.poll()

    # ---- dataset view ----------------------------------------------------------------------
    def watch_index(self, index: int) -> None:
        self.render_conversation(index)

    @work(thread=True, exclusive=True, exit_on_error=False, group="post-render")
    def render_conversation(self, index: int) -> ConversationShown | None:
        """Render one conversation with the chat model's template (a model call: off the UI thread)."""
        from lab.conversations import chat_format, render_conversation

        backend = self.app.session.loaded("chat")
        if backend is None:
            return None
        example = self.examples[index]
        with backend.lock:
            r = render_conversation(chat_format(backend), example.messages)
            pieces = tuple(backend.token_bytes(i) for i in r.ids)
        return ConversationShown(index, len(self.examples), example.task, example.truth, pieces, r.mask,
                                 frozenset(s.start for s in r.special), backend.info.name)

    @on(Worker.StateChanged)
    def shown_rendered(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "post-render":
            return
        view = self.query_one("#post-conversation", ConversationView)
        if event.state == WorkerState.SUCCESS:
            view.shown = event.worker.result
            if event.worker.result is None:
                view.update(Content(self.app.session.role_status("chat") or "The chat model is not loaded."))
        elif event.state == WorkerState.ERROR:
            err = event.worker.error
            view.update(Content(str(err) if isinstance(err, LabError) else f"Could not render: {err.__class__.__name__}"))

    def action_step(self, delta: int) -> None:
        self.index = (self.index + delta) % len(self.examples)

    def action_switch_view(self) -> None:
        self.view_name = VIEWS[(VIEWS.index(self.view_name) + 1) % len(VIEWS)]

    def watch_view_name(self, name: str) -> None:
        self.query_one("#post-switch", ContentSwitcher).current = f"post-{name}"
        self.query_one("#post-views", Static).update(Content.from_markup(
            "view (v): " + " · ".join(f"[b $accent]▸{n}[/]" if n == name else n for n in VIEWS)))
        if name == "rl":  # its keys (s, p, x, r, c) work while it has focus
            self.query_one("#post-rl", RLPanel).focus()
        if name == "rlhf":
            self.query_one(RLHFPanel).focus()
        self.refresh_bindings()

    # ---- run view --------------------------------------------------------------------------
    def poll(self) -> None:
        run = self.run
        if self.run_view is None or run.version != self.run_view.version:
            self.run_view = run.snapshot()

    def watch_run_view(self, old: RunView | None, view: RunView | None) -> None:
        if view is None:
            return
        from lab.sft_run import preset_cost

        ev = view.last
        parts = [view.state]
        if ev is not None:
            parts.append(f"step {ev.step}/{ev.max_iters}")
            if view.losses:
                parts.append(f"loss {view.losses[-1]:.4f}")
            if view.val_losses:
                parts.append(f"val {view.val_losses[-1]:.4f}")
            if view.active:
                parts.append(f"{ev.tokens_per_sec:,.0f} tok/s")
        hint = f"{preset_cost(PRESET)} · s start" if view.state == "idle" else view.message
        self.query_one("#post-readout", Static).update(Content(" · ".join(parts) + "\n" + hint))
        if ev is not None:
            self.query_one("#post-bar", ProgressBar).update(total=ev.max_iters, progress=ev.step)
        self.query_one("#post-plot", LossPlot).curves = (view.steps, view.losses, view.val_steps, view.val_losses)
        log = self.query_one("#post-samples", RichLog)
        if len(view.samples) < self._samples_shown:  # a new run
            log.clear()
            self._samples_shown = 0
        for step, text in view.samples[self._samples_shown:]:
            log.write(f"── step {step} ──")
            log.write(Text(visible(text, False)))  # model text: control characters shown, no markup
        self._samples_shown = len(view.samples)
        self.draw_experiment(view)
        if old is None or old.state != view.state:
            self.refresh_bindings()

    def draw_experiment(self, view: RunView) -> None:
        """Both styles' accuracy on the same held-out problems, each answer marked ✓ or ✗."""
        run = self.run
        results = run.results if run.experiment else {}
        state = (f"running: {view.message}" if view.active and run.experiment else
                 "e runs it: one pretraining, then SFT on answer-first and on working-first solutions of the "
                 "same problems; both scored on the same held-out problems (cpu-quick with SFT twice: "
                 "about 3 minutes on a 2-core CPU)")
        if results:
            state = "  ·  ".join(f"{style}-first {sum(s.passed for s in scored)}/{len(scored)} right"
                                 for style, scored in results.items())
        self.query_one("#post-exp-head", Static).update(Content(f"{state}\n{CHECKER_WORDS}"))
        for style in ("answer", "working"):
            scored = results.get(style, [])
            lines = [f"{style}-first" + (f": {sum(s.passed for s in scored)}/{len(scored)}" if scored else "")]
            for s in scored:
                reply = one_line(s.reply)  # one answer, one line (as the Failures screen)
                lines.append(f"{'✓' if s.passed else '✗'} {s.question}\n   {reply}"
                             f"\n   read {s.got}, truth {s.truth}")
            self.query_one(f"#post-exp-{style}", Static).update(Content("\n".join(lines)))  # model text: no markup

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Each view shows its own keys (False: hidden). A key that cannot act now still runs, and says why."""
        if (action == "step") != (self.view_name == "dataset") and action in ("step", "pause", "stop"):
            return False
        if action == "experiment" and self.view_name != "experiment":
            return False
        if self.view_name in ("rl", "rlhf") and action in ("start", "pause", "stop", "before_after", "experiment"):
            return False  # the RL and RLHF panels' own keys
        return True

    def action_start(self) -> None:
        from dataclasses import replace

        from lab.sft import PRESETS
        from lab.sft_run import SFTRun

        if self.run.active:
            self.notify("A run is already going (x stops it).")
            return
        self.app.sft_run = SFTRun(PRESET)
        self.app.sft_run.start(self.app.sft_config or replace(PRESETS[PRESET], out_dir=str(self.app.sft_dir)))
        self.view_name = "run"
        self.poll()

    def action_experiment(self) -> None:
        from dataclasses import replace

        from lab.sft import PRESETS
        from lab.sft_run import SFTRun

        if self.run.active:
            self.notify("A run is already going (x stops it).")
            return
        self.app.sft_run = SFTRun(PRESET, experiment=True)
        cfg = self.app.sft_config or PRESETS[PRESET]
        self.app.sft_run.start(replace(cfg, out_dir=str(self.app.sft_dir.parent / (self.app.sft_dir.name + "-experiment"))))
        self.poll()

    def action_before_after(self) -> None:
        """Open Base vs chat with the pretrained model (before SFT) as the base and tiny-chat as the chat model:
        the same prompt, the base continuing the document, the finetuned answering and stopping at <|im_end|>."""
        before, after = self.app.sft_dir / "base" / "ckpt.pt", self.app.sft_dir / "ckpt.pt"
        if self.run.active or not (before.exists() and after.exists()):
            self.notify("Finish a run first (s): before/after needs the model before SFT and after it.")
            return
        for role, path in (("base", before), ("chat", after)):
            self.app.session.use(role, str(path))
            self.app.load_role(role)
        self.app.switch_mode("basechat")

    # p and x do what they do on the Training screen, on this screen's run
    action_pause = TrainingScreen.action_pause
    action_stop = TrainingScreen.action_stop

    # ---- talk steps and saved sessions -------------------------------------------------------
    def apply_step(self, fields: dict) -> None:
        """Take a talk step's state (lab.talk.FIELDS["post"]): the view, and which conversation the dataset
        view shows (`conversation`, counted from 1, among the conversations of `task` when it is given)."""
        if "task" in fields or "conversation" in fields:
            self.index = conversation_index(self.examples, fields.get("task", ""), fields.get("conversation", 1))
        if "view" in fields:
            self.view_name = fields["view"]

    def state(self) -> dict:
        return {"fields": {"view": self.view_name, "conversation": self.index + 1}}

    @staticmethod
    def check_state(state: dict) -> None:
        fields = state["fields"]
        if fields.get("view", "dataset") not in VIEWS or not isinstance(fields.get("conversation", 1), int):
            raise ValueError("view or conversation")

    def restore_state(self, state: dict) -> None:
        self.apply_step(state.get("fields", {}))

    def palette_commands(self):
        yield "post-training: switch view", self.action_switch_view, "Dataset or run view"
        yield "post-training: start", self.action_start, "Pretrain then finetune the tiny GPT (tiny-chat)"
        yield "post-training: stop", self.action_stop, "Stop the run"
