"""`deepdive-lab serve`: the lab in a browser tab, through textual-serve.

Each browser session gets its own `python -m deepdive_lab ...` process (textual-serve runs the
command per websocket), so two tabs are two independent labs. The page works offline:
textual-serve's page template links a font stylesheet on an external host, which a projector
machine without a network cannot reach; `OfflineServer` serves the same template with that link
replaced by an `@font-face` for the Roboto Mono font textual-serve already ships in its static
folder. The page then loads only from this server (its script, CSS, font, background image).
Its URLs name the host the browser asked for, so `--host 0.0.0.0` serves other machines too
(textual-serve would write `ws://0.0.0.0:8000/ws` into the page).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

from textual_serve.server import Server

# A <link> whose href is on another host (textual-serve 1.1.3 has one: the font stylesheet).
EXTERNAL_LINK = re.compile(r"""<link\b[^>]*\bhref\s*=\s*["']https?://[^>]*>""", re.IGNORECASE)
LOCAL_FONT = """<style>
      @font-face {
        font-family: "Roboto Mono";
        src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf") format("truetype");
        font-weight: 100 700;
      }
    </style>"""


def offline_page(template: str) -> str:
    """textual-serve's page template without external links; its font comes from the static folder.

    `<link rel="stylesheet" href="https://fonts.example/css?family=Roboto%20Mono"/>` becomes one
    `<style>@font-face {...}</style>` (the first such link) or nothing (any further one)."""
    replacements = iter([LOCAL_FONT])
    return EXTERNAL_LINK.sub(lambda _match: next(replacements, ""), template)


class OfflineServer(Server):
    """textual-serve's Server with the page made offline (see `offline_page`), its URLs on the
    host each browser asked for."""

    async def handle_index(self, request):
        # Server.handle_index builds the page's URLs from `public_url` before its first await.
        self.public_url = f"{request.scheme}://{request.host}"
        return await super().handle_index(request)

    async def _make_app(self):
        import aiohttp_jinja2
        import jinja2

        app = await super()._make_app()
        pages = {"app_index.html": offline_page((self.templates_path / "app_index.html").read_text("utf-8"))}
        aiohttp_jinja2.setup(app, loader=jinja2.DictLoader(pages))  # replaces the folder loader
        return app


def lab_command(args: list[str]) -> str:
    """The shell command that runs one lab (textual-serve starts it through a shell)."""
    argv = [sys.executable, "-m", "deepdive_lab", *args]
    return subprocess.list2cmdline(argv) if os.name == "nt" else shlex.join(argv)


def serve(lab_args: list[str], host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the lab until Ctrl+C (or SIGTERM); `lab_args` are the flags each lab starts with."""
    OfflineServer(lab_command(lab_args), host=host, port=port, title="deepdive-lab").serve()
