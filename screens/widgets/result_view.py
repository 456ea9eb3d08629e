"""One variant of a failure demo: its pass rate, the checker, and every sampled answer.

A scrolling pane (keys and wheel): the pass rate and the checker stay at the top, the
answers scroll under them.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from lab.failures import Answer, Variant, pass_rate, score
from lab.tokentext import one_line

PROGRAM_LINES = 14  # a longer program is cut on screen (it still runs whole)


class ResultView(VerticalScroll, can_focus=True):
    """Pass rate over N seeded answers with the checker that scored them, answers streamed in."""

    COMPONENT_CLASSES = {"result-view--pass", "result-view--fail", "result-view--dim", "result-view--code",
                         "result-view--title"}
    DEFAULT_CSS = """
    ResultView { width: 1fr; height: 1fr; padding: 0 1; border: round $panel; scrollbar-size-vertical: 1; }
    ResultView > .result-head { dock: top; height: auto; }
    ResultView > .result-body { height: auto; }
    ResultView:focus { border: round $accent; }
    ResultView > .result-view--pass { color: $success; text-style: bold; }
    ResultView > .result-view--fail { color: $error; text-style: bold; }
    ResultView > .result-view--dim { color: $text-muted; }
    ResultView > .result-view--code { background: $boost; }
    ResultView > .result-view--title { text-style: bold; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.variant: Variant | None = None
        self.answers: list[Answer | None] = []
        self.message = ""

    def compose(self) -> ComposeResult:
        yield Static(classes="result-head")
        yield Static(classes="result-body")

    def on_mount(self) -> None:
        self.redraw()

    def reset(self, variant: Variant | None, n: int = 0, message: str = "") -> None:
        self.variant = variant
        self.answers = [None] * n
        self.message = message
        self.redraw()

    def shown_rate(self) -> tuple[int, int]:
        if self.variant is None:
            return 0, 0
        return pass_rate(self.variant, [a for a in self.answers if a is not None])

    def redraw(self) -> None:
        if not self.is_mounted:
            return
        st = lambda name: self.get_visual_style(f"result-view--{name}")  # noqa: E731
        dim, ok, bad, code = st("dim"), st("pass"), st("fail"), st("code")
        v = self.variant
        head, body = self.query_one(".result-head", Static), self.query_one(".result-body", Static)
        if v is None:
            head.update(Content(self.message))
            body.update("")
            return
        passed, scored = self.shown_rate()
        pending = sum(a is None or not a.done for a in self.answers)
        rate = f"pass {passed}/{scored}" + (f" ({passed / scored:.0%})" if scored else "")
        if not self.answers:
            rate = "not run yet"
        parts: list = [(v.name, st("title")), "  ·  ",
                       (rate, (ok if passed * 2 >= scored else bad) if scored else dim)]
        if pending:
            parts.append((f"  ·  {pending} to go", dim))
        parts += ["\n", ("checker: " + v.checker.description, dim)]
        if self.message:
            parts += ["\n", self.message]
        head.update(Content.assemble(*parts, strip_control_codes=True))
        parts = []
        for i, a in enumerate(self.answers):
            if a is None:
                continue
            parts.append("\n")
            if not a.done:
                parts.append(("…  ", dim))
            elif a.stop == "cancelled":
                parts.append(("–  ", dim))
            else:
                verdict = score(v, a)
                parts.append(("✓  " if verdict.passed else "✗  ", ok if verdict.passed else bad))
            head = f"#{i + 1} seed {a.seed}"
            if a.done and a.stop != "cancelled":
                head += f" · got {score(v, a).got}"
            if a.cached:
                head += " · cached"
            elif a.stop and a.stop not in ("eos", "stop text"):
                head += f" · {a.stop}"
            parts += [(head, dim), "\n   "]
            if a.stop == "cancelled":
                parts.append(("cancelled", dim))
                continue
            if a.stop == "error":
                parts += [(f"not scored: {a.error or 'the model failed'}", bad), "\n   "]
            if v.tool:
                parts += self._tool_parts(a, dim, ok, bad, code)
            else:
                parts.append(one_line(a.text, "(nothing yet)" if not a.done else "(empty answer)"))
        body.update(Content.assemble(*parts, strip_control_codes=True))

    def _tool_parts(self, a: Answer, dim, ok, bad, code) -> list:
        if not a.done or a.program is None:
            if a.done:
                return [("no program found in the answer: ", dim), one_line(a.text, "")[:300]]
            if a.program is not None:
                return [("running the program in the sandbox…", dim)]
            return [one_line(a.text, "(nothing yet)")]
        lines = a.program.rstrip("\n").split("\n")
        shown = lines[:PROGRAM_LINES]
        parts: list = []
        for k, line in enumerate(shown):
            parts += [(line.expandtabs(4) or " ", code), "\n" + ("   " if k + 1 < len(shown) else "")]
        if len(lines) > len(shown):
            parts += [(f"   … {len(lines) - len(shown)} more lines", dim), "\n"]
        run = a.run or {}
        out = (run.get("stdout") or "").strip()
        out_line = out.split("\n")[0][:80] if out else "(no output)"
        verdict = score(self.variant, a)
        parts += [("   sandbox: ", dim), run.get("message", ""), ("  ·  output: ", dim), out_line,
                  (f"  ·  {run['isolation']}" if run.get("isolation") else "", dim)]
        err = (run.get("stderr") or "").strip()
        last_err = err.split("\n")[-1][:100] if err else ""
        if last_err and run.get("status") != "ok" and last_err != run.get("message"):
            parts += ["\n   ", (last_err, dim)]
        parts += ["\n   ", ("corrected answer: ", dim),
                  (verdict.got if verdict.got not in ("no number", "not run") else "none",
                   ok if verdict.passed else bad)]
        return parts
