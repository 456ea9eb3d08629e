"""The Next-token, Base vs chat, Failures and Tokens screens driven with keys through remote
models (llama-cpp-python's server on SmolLM2, and the tests' own fault server)."""

import pytest
from textual.widgets import Input, TextArea

from lab.session import Session, Settings
from screens.widgets.result_view import ResultView
from tests.fault_server import FaultServer
from tests.helpers import make_test_app, settle, shown

KEY = "sk-planted-0a1b2c3d4e5f60718293"


def remote_app(base: str, chat: str):
    return make_test_app(session=Session(Settings(base_model=base, chat_model=chat)))


async def test_next_token_bars_are_the_servers_numbers(llama_server, smol):
    app = remote_app(f"openai+{llama_server}", f"openai+{llama_server}")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("f2")
        await settle(app, pilot)
        s = app.screen
        s.query_one("#next-prompt", TextArea).load_text("The capital of France is")
        await settle(app, pilot)
        await pilot.press("escape")
        await settle(app, pilot)
        bars = shown(s.query_one("#bars"))
        assert "Paris" in bars and "returns the top 20 tokens of each step only" in bars
        ours = smol.next_token(smol.tokenize("The capital of France is"), 3)
        rows = s.explorer.filtered(s.settings(), 3)
        assert rows[0].id == ours.top[0].id and abs(rows[0].raw_prob - ours.top[0].prob) < 0.02
        assert f"{rows[0].raw_prob:.2%}" in bars
        assert s.explorer.prefetch_calls == 0  # no look-ahead requests to a server
        await pilot.press("1")  # pick ' Paris': the path grows by that id, bars for the next step
        await settle(app, pilot)
        assert s.explorer.ids[-1] == ours.top[0].id and "Paris" in shown(s.query_one("#next-info"))
        await pilot.press("ctrl+o", "ctrl+o")  # bars -> surprisal -> logit lens
        await settle(app, pilot)
        assert "no logit lens over HTTP" in shown(s.query_one("#lens"))
        assert app.is_running


async def test_base_vs_chat_streams_through_remote_endpoints(llama_server):
    app = remote_app(f"openai+{llama_server}", f"openai-chat+{llama_server}")
    async with app.run_test(size=(130, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        await settle(app, pilot)
        s = app.screen
        s.query_one("#bc-max-tokens", Input).value = "12"
        runs = []
        for _ in range(3):  # the server caches the prompt after the first run: runs 2 and 3 compare like for like
            s.query_one("#bc-prompt", Input).focus()
            await pilot.press("enter")
            await settle(app, pilot)
            runs.append({role: [x.text for x in s.pane(role).samples] for role in ("base", "chat")})
        for role in ("base", "chat"):
            pane = s.pane(role)
            assert len(pane.samples) == 1 and pane.samples[0].text.strip(), role
            assert pane.samples[0].stop_reason in ("length", "eos")
            assert pane.samples[0].text.split()[0] in shown(pane), role
        assert runs[1] == runs[2]
        await pilot.press("ctrl+t")  # the template view says the chat template is the server's
        await settle(app, pilot)
        assert "[user]" in shown(s.pane("chat"))
        assert app.is_running


async def test_failures_answers_come_from_the_remote_chat_model(llama_server, tmp_path):
    app = remote_app(f"openai+{llama_server}", f"openai-chat+{llama_server}")
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        await pilot.press("f4")
        await settle(app, pilot)
        s = app.screen
        s.query_one("#fl-samples", Input).value = "1"
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        view = s.query_one("#fl-result-0", ResultView)
        assert len(view.answers) == 1 and view.answers[0].done and view.answers[0].text
        assert view.answers[0].text.replace("\n", " ⏎ ")[:20] in shown(view).replace("\n", " ")
        assert "pass " in shown(view) and app.is_running


@pytest.fixture
def faults(monkeypatch, tmp_path):
    srv = FaultServer()
    monkeypatch.setenv("DDL_SCREEN_KEY", KEY)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[remotes.planted]\nurl = "{srv.url("401")}"\nmodel = "m"\nkey_env = "DDL_SCREEN_KEY"\n\n'
                   f'[remotes.busy]\nurl = "{srv.url("429")}"\nmodel = "m"\nbackoff = 0.01\n\n'
                   f'[remotes.broken]\nurl = "{srv.url("500")}"\nmodel = "m"\n')
    monkeypatch.setenv("DEEPDIVE_LAB_CONFIG", str(cfg))
    yield srv
    srv.shutdown()


async def test_a_bad_key_is_a_message_and_never_on_screen_or_in_a_screenshot(faults):
    app = remote_app("planted", "broken")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("f3")
        await settle(app, pilot)
        s = app.screen
        texts = [shown(s.pane("base")), shown(s.pane("chat"))]
        assert "401" in texts[0] and "DDL_SCREEN_KEY" in texts[0] and "500" in texts[1]
        notes = " ".join(str(n.message) for n in app._notifications)
        svg = app.export_screenshot()
        assert "401" in notes and app.is_running
        for text in texts + [notes, svg]:
            assert KEY not in text


async def test_rate_limit_retries_are_shown(faults):
    app = remote_app("busy", "busy")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        notes = " ".join(str(n.message) for n in app._notifications)
        assert app.session.loaded("chat") is not None
        assert "rate limiting (429): retrying" in notes and faults.hits["429"] >= 3


async def test_tokens_screen_counts_a_remote_models_tokens_like_in_process(llama_server, smol):
    from tests.helpers import type_text

    text = "How many r are in strawberry?"
    app = remote_app(f"openai+{llama_server}", f"openai+{llama_server}")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        area = app.screen.query_one("#tokens-input", TextArea)
        area.load_text("")
        area.focus()
        await pilot.pause()
        await type_text(pilot, text)
        await settle(app, pilot)
        for _ in range(3):  # cl100k -> o200k -> r50k -> the chat model's own tokenizer
            await pilot.press("ctrl+n")
            await settle(app, pilot)
        line = shown(app.screen.query_one("#tokens-stats"))
        assert line.startswith("127.0.0.1") and app.is_running
        assert f" {len(smol.tokenize(text, add_special=False)):,} tokens" in line


async def test_tokens_screen_says_when_a_remote_cannot_tokenize(faults):
    app = remote_app("broken", f"openai+{faults.url('ok').replace('/ok/', '/notok/')}#m")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        for _ in range(3):
            await pilot.press("ctrl+n")
            await settle(app, pilot)
        line = shown(app.screen.query_one("#tokens-stats"))
        assert "cannot show this model's tokens" in line and app.is_running
