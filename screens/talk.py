"""Talk mode: walk a talk track one key a step, the same on stage as in rehearsal.

`TalkMode` (owned by the app) knows the track and the current step; `go(i)` switches to the
step's screen, asks the screen to take the step's state (`screen.apply_step(fields)`, each
screen's own method), then presses the step's keys. A caption line at the bottom of the
screen says where the talk is; a bad step shows its message there and the talk goes on.
The current step is written to a small state file so `deepdive-lab talk notes` in a second
terminal can follow along.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from lab.talk import Step, Track


def position_file() -> Path:
    """Where the current step is written for `deepdive-lab talk notes` (one per user)."""
    from lab.paths import cache_dir

    return cache_dir() / "talk" / "position.json"


_frozen = False  # the warm lab is frozen out of the garbage collector's full collections


def freeze() -> None:
    """Collect, then freeze what exists (the warm lab: models, screens) so a full collection
    during a step scans only what the talk made since; `thaw` undoes it."""
    global _frozen
    import gc

    gc.collect()
    gc.freeze()
    _frozen = True


def thaw() -> None:
    """Give the frozen objects back to the collector (the talk is left, or the app closes)."""
    global _frozen
    if _frozen:
        import gc

        gc.unfreeze()
        _frozen = False


class TalkCaption(Static):
    """The talk's line at the bottom of a screen: step n/N, the caption, and notes on request.
    Removed when the talk is left or the app closes: then the lab frozen by `warm` thaws."""

    DEFAULT_CSS = """
    TalkCaption { height: auto; max-height: 8; background: $primary-background; color: $text;
                  padding: 0 1; text-style: bold; }
    TalkCaption.-error { background: $error 40%; }
    """

    def on_unmount(self) -> None:
        thaw()


class StepList(ModalScreen[int]):
    """The track's steps; Enter jumps to one, Esc closes."""

    BINDINGS = [Binding("escape", "dismiss_list", "Close", id="talk.list.close")]
    DEFAULT_CSS = """
    StepList { align: center middle; }
    StepList > OptionList { width: 90%; max-width: 110; height: 80%; border: round $accent; }
    """

    def __init__(self, track: Track, current: int) -> None:
        super().__init__()
        self.track, self.current = track, current

    def compose(self) -> ComposeResult:
        options = []
        for s in self.track.steps:
            mark = "✗ " if s.error else ("▶ " if s.index - 1 == self.current else "  ")
            options.append(Option(f"{mark}{s.index:>2}. {s.screen:<9} {s.caption or s.error}", id=str(s.index - 1)))
        yield OptionList(*options, id="talk-steps", markup=False)

    def on_mount(self) -> None:
        steps = self.query_one(OptionList)
        steps.highlighted = max(0, self.current)
        steps.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id))

    def action_dismiss_list(self) -> None:
        self.dismiss(-1)


class TalkMode:
    """The app's talk: the track and where it is. Runs on the UI thread."""

    def __init__(self, app, track: Track) -> None:
        self.app = app
        self.track = track
        self.index = -1
        self.show_notes = False
        self.captions: list[TalkCaption] = []  # one per screen the talk has shown
        self.live = False  # the current step sampled a model: its rehearsal cache did not hold it

    @property
    def step(self) -> Step | None:
        return self.track.steps[self.index] if 0 <= self.index < len(self.track.steps) else None

    async def warm(self) -> None:
        """Build every screen the track uses before the first step, so a step on stage never pays
        for building its screen (the first visit to an area mounts all its widgets). Then collect
        and freeze what exists: a full collection during a step scanned all of it (about 200 ms on a
        loaded 2-core CPU); frozen, it scans only what the talk made since."""
        first = self.app.current_mode
        for mode in dict.fromkeys(s.screen for s in self.track.steps if not s.error):
            if mode != self.app.current_mode:
                await self.app.switch_mode(mode)
        if self.app.current_mode != first:
            await self.app.switch_mode(first)
        freeze()

    async def go(self, index: int) -> None:
        """Put the lab in the state of step `index` (0-based; clamped to the track)."""
        index = max(0, min(len(self.track.steps) - 1, index))
        self.index, self.live = index, False
        step = self.track.steps[index]
        self._write_position()
        if step.error:
            self.refresh_caption()
            return
        if step.model:  # the step names a model for its role: load it first (its progress shows on top)
            role = step.fields.get("role", "chat")
            if self.app.session.model_name(role) != step.model:
                self.app.session.use(role, step.model)
                try:
                    await self.app.load_role(role).wait()
                except Exception:  # WorkerFailed: the app already says why (top line and a notice)
                    pass
        if self.app.current_mode != step.screen:
            await self.app.switch_mode(step.screen)
        screen = self.app.screen
        apply = getattr(screen, "apply_step", None)
        if apply is not None:
            try:
                apply(dict(step.fields))
            except Exception as exc:  # a step must never take the talk down: say what failed
                self.refresh_caption(f"{step.name}: could not be applied: {exc.__class__.__name__}: {exc}")
                return
        for key in step.keys:
            self.app.simulate_key(key)
        self.refresh_caption()

    def mark_live(self) -> None:
        """The step is computing live (no rehearsal cache held it): the caption says so once."""
        if not self.live:
            self.live = True
            self.refresh_caption()

    def refresh_caption(self, problem: str = "") -> None:
        screen = self.app.screen
        captions = screen.query(TalkCaption)
        caption = captions.first() if captions else None
        if caption is None:
            caption = TalkCaption()
            self.captions.append(caption)
            screen.mount(caption)
        step = self.step
        if step is None:
            caption.update("")
            return
        problem = problem or step.error
        caption.set_class(bool(problem), "-error")
        head = f"▶ {step.index}/{len(self.track.steps)}  "
        parts: list = [head, problem or step.caption]
        if self.live and not problem:
            parts.append(("  · live: not in the rehearsal cache", "italic"))
        parts.append(("   PgDn/PgUp · F9 steps · Esc leave", "dim"))
        if self.show_notes and step.notes:
            parts += ["\n", (step.notes, "italic")]
        caption.update(Content.assemble(*parts))

    def remove_captions(self) -> None:
        for caption in self.captions:
            if caption.is_attached:
                caption.remove()
        self.captions.clear()

    def _write_position(self) -> None:
        step = self.step
        if step is None:
            return
        data = {"track": self.track.path, "title": self.track.title, "index": step.index,
                "total": len(self.track.steps), "caption": step.caption, "notes": step.notes,
                "error": step.error, "pid": os.getpid(), "time": time.time()}
        from lab.cache import write_json

        try:
            write_json(position_file(), data)
        except OSError:
            pass  # the notes follower is a convenience: a read-only cache only costs it


# ---- rehearsal and the notes follower ------------------------------------------------------

@dataclass(frozen=True)
class Rehearsed:
    step: int
    screen: str
    seconds: float
    problem: str = ""


async def rehearse(pilot, track: Track, report: list, say=print) -> None:
    """Run every step of `track` headless, as on stage, waiting for each to finish (so the
    answer and sample caches fill); `say` one line per step, then the total and the slowest."""
    from screens.headless import settle

    app = pilot.app
    await settle(app, pilot)
    app.start_talk(track, go=False)
    await settle(app, pilot)
    start = time.perf_counter()
    for i, step in enumerate(track.steps):
        t0 = time.perf_counter()
        problem = step.error
        if not problem:
            await app.talk.go(i)
            await settle(app, pilot)
            problem = _screen_problem(app, step)
        row = Rehearsed(step.index, step.screen, time.perf_counter() - t0, problem)
        report.append(row)
        say(f"step {row.step:>2} {row.screen:<9} {row.seconds:6.1f} s  {'FAILED: ' + problem if problem else 'ok'}"
            f"  {step.caption}")
    total = time.perf_counter() - start
    slowest = sorted(report, key=lambda r: -r.seconds)[:3]
    say(f"rehearsed {len(report)} steps in {total:.1f} s; slowest: "
        + ", ".join(f"step {r.step} ({r.seconds:.1f} s)" for r in slowest))
    failed = [r for r in report if r.problem]
    say(f"{len(failed)} step(s) failed" if failed else "every step ran")
    app.exit()


def _screen_problem(app, step: Step) -> str:
    """What went wrong on a step's screen, if anything: a model that did not load."""
    for role in ("chat", "base"):
        err = app.session.error(role)
        if err is not None and step.screen in ("next", "basechat", "failures"):
            return f"the {role} model failed to load: {err.message}"
    return ""


def follow_notes(say=print, poll: float = 0.3, stop=None) -> None:
    """Print the caption and notes of the step the talk shows, each time it changes
    (`deepdive-lab talk notes`, in a second terminal beside the projector's)."""
    path = position_file()
    last = None
    say(f"following the talk's notes ({path}); Ctrl+C stops")
    while stop is None or not stop():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        key = data and (data.get("time"), data.get("index"))
        if data and key != last:
            last = key
            say(f"\n── step {data['index']}/{data['total']} · {data.get('caption', '')}")
            say(data.get("error") or data.get("notes") or "(no notes for this step)")
        time.sleep(poll)
