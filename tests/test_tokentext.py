"""lab.tokentext.one_line: a model's reply as one safe line of a screen."""

from xml.etree import ElementTree

from lab.tokentext import one_line


def test_a_reply_is_one_line_with_its_control_characters_made_visible():
    assert one_line("6\x1f\n7") == "6␟ ⏎ 7"
    assert one_line("") == "(empty)" and one_line("", "(nothing yet)") == "(nothing yet)"
    hostile = "ok\x1b[2J\x07\x00\u202edone\r\n"
    shown = one_line(hostile)
    assert "\n" not in shown and not any(ord(c) < 32 for c in shown) and "\u202e" not in shown
    ElementTree.fromstring(f"<t>{shown}</t>")  # what Textual writes into an exported SVG stays well-formed XML
