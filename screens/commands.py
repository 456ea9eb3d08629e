"""Command-palette providers: the app's own commands, and each screen's.

Commands are named "area: action". A screen lists its commands in `palette_commands()`,
yielding (name, callback, help) triples, and sets `COMMANDS = {ScreenCommands}`; the palette
asks the provider of the screen it was opened on (not `app.screen`, which is the palette).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from textual.command import Hit, Hits, Provider

Command = tuple[str, Callable[[], object], str]  # (name, callback, help)


class _Commands(Provider):
    def commands(self) -> Iterable[Command]:
        raise NotImplementedError

    async def discover(self) -> Hits:
        for name, callback, help_text in self.commands():
            yield Hit(1.0, name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)


class ScreenCommands(_Commands):
    """The commands of the screen the palette was opened on (its `palette_commands()`)."""

    def commands(self) -> Iterable[Command]:
        listed = getattr(self.screen, "palette_commands", None)
        return listed() if listed is not None else ()


class LabCommands(_Commands):
    """Commands of the whole lab: switch area, screenshot, reload models."""

    def commands(self) -> Iterable[Command]:
        from screens.app import AREAS

        app = self.app
        for mode, (title, _, _) in AREAS.items():
            yield f"mode: {title.lower()}", (lambda m=mode: app.switch_mode(m)), f"Switch to the {title} screen"
        yield "app: save screenshot", app.action_save_screenshot, "Save an SVG of the current screen (Ctrl+S)"
        yield "app: save the lab's state", app.action_save_state, "Every screen's text, settings and results, to a file"
        yield "app: reset this screen", app.action_reset_screen, "Back to its defaults"
        yield "models: reload", app.action_reload_models, "Load the base and chat models again"
        for role in ("base", "chat"):
            yield (f"models: pick the {role} model", (lambda r=role: app.action_pick_model(r)),
                   f"Any catalogue model as the {role} model (now {app.session.model_name(role)})")
        if app.talk is None:
            yield "talk: start the default track", app.action_talk_start, "Walk the talk one key a step (PageDown)"
        else:
            yield "talk: notes", app.action_talk_notes, "Show or hide the presenter notes under the caption"
            yield "talk: step list", app.action_talk_steps, "Jump to any step of the track (F9)"
            yield "talk: restart", app.action_talk_restart, "Back to the first step (Home)"
            yield "talk: leave", app.action_talk_leave, "Leave talk mode with the lab as it is (Esc)"
