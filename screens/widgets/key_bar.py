"""A one-line key bar: the keys the focused widget and its screen answer, drawn as one line.

Textual's Footer builds one widget per key (with its own styles), which costs a noticeable
part of the first frame; this draws the same information as a single line of text and
redraws when the screen's bindings change. A click on a key presses it.
"""

from __future__ import annotations

from textual.content import Content
from textual.events import Click
from textual.widgets import Static


class KeyBar(Static):
    COMPONENT_CLASSES = {"key-bar--key", "key-bar--label", "key-bar--disabled"}
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; background: $footer-background; padding: 0 1 0 0; }
    KeyBar > .key-bar--key { color: $footer-key-foreground; text-style: bold; }
    KeyBar > .key-bar--label { color: $footer-description-foreground; }
    KeyBar > .key-bar--disabled { color: $text-disabled; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._spans: list[tuple[int, int, str]] = []  # (x0, x1, key) for clicks

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, lambda _=None: self.refresh())

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def render(self) -> Content:
        key_style = self.get_visual_style("key-bar--key")
        label_style = self.get_visual_style("key-bar--label")
        off_style = self.get_visual_style("key-bar--disabled")
        active = self.screen.active_bindings
        shown = []
        seen: set[str] = set()
        for _node, binding, enabled, _tooltip in active.values():
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                shown.append((" " + self.app.get_key_display(binding) + " ", binding.description + " ", binding.key,
                              enabled, binding.id or ""))
        # The area keys in their order (F6 is a priority binding, which can list it first), where the first was.
        areas = [row for row in shown if row[4].startswith("mode.")]
        if areas:
            first = shown.index(areas[0])
            rest = [row for row in shown if row not in areas]
            shown = rest[:first] + sorted(areas, key=lambda row: int(row[2][1:]) if row[2][1:].isdigit() else 0) \
                + rest[first:]
        width = self.size.width or 80
        if sum(len(k) + len(d) for k, d, *_ in shown) + 12 > width:
            # Short of room: the area keys (F1-F5) collapse into one entry.
            areas = [row for row in shown if row[4].startswith("mode.")]
            if len(areas) > 1:
                first = shown.index(areas[0])
                merged = (f" {areas[0][0].strip()}-{areas[-1][0].strip()} ", "areas ", areas[0][2], True, "mode")
                shown = [row for row in shown if row not in areas]
                shown.insert(first, merged)
        parts: list = []
        spans: list[tuple[int, int, str]] = []
        x = 0
        for key, label, key_name, enabled, _id in shown:
            parts += [(key, key_style if enabled else off_style), (label, label_style if enabled else off_style)]
            spans.append((x, x + len(key) + len(label), key_name))
            x += len(key) + len(label)
        palette = self.app.COMMAND_PALETTE_BINDING
        if palette in active and self.app.ENABLE_COMMAND_PALETTE:
            key = " " + self.app.get_key_display(active[palette][1]) + " "
            gap = max(1, width - x - len(key) - len("palette") - 1)
            parts += [" " * gap, "│", (key, key_style), ("palette", label_style)]
            spans.append((x + gap + 1, x + gap + 1 + len(key) + len("palette"), palette))
        self._spans = spans
        return Content.assemble(*parts)

    def on_click(self, event: Click) -> None:
        for x0, x1, key in self._spans:
            if x0 <= event.x < x1:
                self.app.simulate_key(key.split(",")[0])
                return
