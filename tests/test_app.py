"""The app shell: modes, palette, first frame before heavy imports, failed loads, screenshots."""

import subprocess
import sys
import textwrap

from textual.command import CommandPalette

from lab.session import Session, Settings
from tests.helpers import make_test_app, settle, shown


def test_first_frame_paints_before_torch_and_llama_cpp_are_imported():
    script = textwrap.dedent("""
        import asyncio, sys
        from screens.app import make_app

        async def main():
            app = make_app()
            seen = {}
            async with app.run_test(size=(100, 30)) as pilot:
                await pilot.pause()
                seen["frame"] = app.screen.query_one("#tokens-stats") is not None
                seen["heavy"] = app.heavy_at_first_frame
                await app.workers.wait_for_complete()
                await pilot.pause()
                seen["after"] = sorted(m for m in ("torch", "llama_cpp") if m in sys.modules)
                seen["states"] = dict(app.model_states)
            print(seen)

        asyncio.run(main())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    seen = eval(out.stdout.strip().splitlines()[-1])
    assert seen["frame"] and seen["heavy"] == []
    assert "llama_cpp" in seen["after"]  # the models did load, in workers, after the first frame
    assert seen["states"] == {"chat": "ready", "base": "ready"}


async def test_header_shows_models_and_device():
    app = make_test_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        bar = shown(app.screen.query_one("ModelStatus"))
        assert bar == "deepdive-lab  Tokens  base: gemma-3-270m · chat: smollm2-135m-instruct · device: cpu"


async def test_failed_load_shows_message_and_app_keeps_running(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 64)
    session = Session(Settings(base_model=str(bad), chat_model="no-such-model"))
    from screens.app import make_app

    app = make_app(session=session)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        assert app.model_states == {"chat": "failed", "base": "failed"}
        messages = [n.message for n in app._notifications]
        assert any("damaged GGUF" in m for m in messages)
        assert any("unknown model 'no-such-model'" in m for m in messages)
        assert "(failed)" in shown(app.screen.query_one("ModelStatus"))
        await pilot.press("ctrl+n", "ctrl+n", "ctrl+n")  # onto the chat model's slot
        await settle(app, pilot)
        assert "unavailable: the chat model failed to load: unknown model" in shown(app.screen.query_one("#tokens-stats"))
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert "the file ends too early" in shown(app.screen.query_one("#tokens-stats"))
        await pilot.press("h", "i")
        assert app.is_running


async def test_mode_keys_palette_and_screenshot(tmp_path):
    app = make_test_app(screenshot_dir=tmp_path)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        for key, mode in (("f2", "next"), ("f3", "basechat"), ("f4", "failures"), ("f5", "training"),
                          ("f1", "tokens")):
            await pilot.press(key)
            await pilot.pause()
            assert app.current_mode == mode
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert CommandPalette.is_open(app)
        for ch in "mode: next":
            await pilot.press("space" if ch == " " else ("colon" if ch == ":" else ch))
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "next"
        await pilot.press("ctrl+p")  # a palette left open while switching mode must not break the next one
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert CommandPalette.is_open(app)
        await pilot.press("escape", "ctrl+s")
        await pilot.pause()
        shots = list(tmp_path.glob("*.svg"))
        assert len(shots) == 1 and "<svg" in shots[0].read_text()[:200]


async def test_key_bar_shows_each_screens_keys_and_a_click_presses_one():
    from screens.widgets.key_bar import KeyBar

    app = make_test_app()
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(app, pilot)
        bar = app.screen.query_one(KeyBar)
        text = shown(bar)
        for key, label in (("^n", "Encoding"), ("^o", "View"), ("f1", "Tokens"), ("f4", "Failures"), ("^p", "palette")):
            assert f"{key} {label}" in text
        await pilot.press("f4")
        await pilot.pause()
        text = shown(app.screen.query_one(KeyBar))
        assert "^g Run" in text and "esc Cancel" in text and "^n Encoding" not in text
        x = text.index("f2 ")  # click the F2 key
        await pilot.click(KeyBar, offset=(x + 1, 0))
        await pilot.pause()
        assert app.current_mode == "next"
    narrow = make_test_app()
    async with narrow.run_test(size=(90, 30)) as pilot:
        await settle(narrow, pilot)
        text = shown(narrow.screen.query_one(KeyBar))
        assert "f1-f6 areas" in text and "^p palette" in text  # short of room: the area keys collapse
