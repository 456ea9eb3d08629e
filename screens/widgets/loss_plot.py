"""The loss plot of a training run: train and validation loss against the step, drawn by plotext.

It draws at its own size every time it renders, so the plot grows with the terminal.
Set `curves` (steps, losses, val_steps, val_losses) and `log_scale`; both are reactive.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

Curves = tuple[tuple[int, ...], tuple[float, ...], tuple[int, ...], tuple[float, ...]]


class LossPlot(Widget):
    DEFAULT_CSS = """
    LossPlot { height: 1fr; min-height: 6; }
    """

    curves: reactive[Curves] = reactive(((), (), (), ()))
    log_scale: reactive[bool] = reactive(False)

    def render(self) -> Text:
        steps, losses, val_steps, val_losses = self.curves
        if not losses:
            return Text("The loss plot appears when training starts.", style="italic")
        try:
            return self._plot(steps, losses, val_steps, val_losses)
        except Exception as exc:  # plotting must never take the screen down
            return Text(f"(the loss plot could not be drawn: {exc.__class__.__name__}: {exc})")

    def _plot(self, steps, losses, val_steps, val_losses) -> Text:
        import plotext as plt

        plt.clf()
        plt.limit_size(False, False)  # the widget's size, not the terminal plotext guesses
        plt.plotsize(max(20, self.size.width), max(6, self.size.height))
        plt.theme("clear")
        stride = max(1, len(steps) // (4 * max(20, self.size.width)))  # a few points per column is plenty
        plt.plot(list(steps[::stride]), list(losses[::stride]), label="train")
        if val_losses:
            plt.plot(list(val_steps), list(val_losses), label="val", marker="dot")
        if self.log_scale:
            plt.yscale("log")
        plt.xlabel("step")
        plt.title("loss" + (" (log scale)" if self.log_scale else ""))
        return Text.from_ansi(plt.build())
