"""High-contrast themes for projectors: pure black or white backgrounds, saturated signal
colours, no dark navy on black. Selected with `--theme`, the config's `theme`, or the
palette's "Theme" command (every Textual theme is there too)."""

from __future__ import annotations

from textual.theme import Theme

PROJECTOR_THEMES = (
    Theme(name="projector-dark", dark=True, primary="#FFD23F", secondary="#3FE0FF", accent="#FF6FD8",
          foreground="#FFFFFF", background="#000000", surface="#101010", panel="#262626",
          success="#3DFF7A", warning="#FFB020", error="#FF4D4D", boost="#FFFFFF18",
          variables={"text-muted": "#C8C8C8", "footer-key-foreground": "#FFD23F",
                     "border": "#FFD23F", "border-blurred": "#8A8A8A"}),
    Theme(name="projector-light", dark=False, primary="#0038A8", secondary="#7A0099", accent="#C03A00",
          foreground="#000000", background="#FFFFFF", surface="#F4F4F4", panel="#DCDCDC",
          success="#007A2E", warning="#A85300", error="#C00000", boost="#00000012",
          variables={"text-muted": "#3A3A3A", "footer-key-foreground": "#0038A8",
                     "border": "#0038A8", "border-blurred": "#6A6A6A"}),
)
