"""Model-written code runs in a locked-down process: hostile programs are stopped or refused,
each reported, and the caller (the app) is unaffected."""

import os
import threading
from pathlib import Path

import pytest

from lab.sandbox import Limits, run_python

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the sandbox needs POSIX")


def test_a_plain_program_runs_and_prints():
    r = run_python('word = "strawberry"\nprint(word.count("r"))')
    assert (r.status, r.stdout, r.returncode) == ("ok", "3\n", 0)


def test_it_runs_in_its_own_empty_folder_with_an_empty_environment():
    r = run_python("import os\nprint(os.getcwd())\nprint(sorted(os.listdir('.')))\nprint(sorted(os.environ))\n"
                   "open('scratch.txt', 'w').write('ok')\nprint(open('scratch.txt').read())")
    assert r.status == "ok", r.stderr
    cwd, listing, env, scratch = r.stdout.splitlines()
    assert listing == "['program.py']" and scratch == "ok"
    assert "HOME" not in env and "PATH" not in env
    assert not Path(cwd, "scratch.txt").exists()  # strong: a private tmpfs; weak: a host folder, removed


def test_an_endless_loop_is_stopped_by_the_cpu_limit():
    r = run_python("while True:\n    pass", Limits(cpu_seconds=1, wall_seconds=10))
    assert r.status == "cpu" and "CPU" in r.message
    assert r.seconds < 9


def test_a_sleeping_program_is_killed_on_timeout():
    r = run_python("import time\nwhile True:\n    time.sleep(0.1)", Limits(wall_seconds=1))
    assert r.status == "timeout" and "wall time" in r.message


def test_a_fork_bomb_is_refused():
    r = run_python("import os\nwhile True:\n    os.fork()")
    assert r.status == "refused" and "starting a process" in r.message


@pytest.mark.parametrize("code", ["import subprocess\nsubprocess.run(['ls'])", "import os\nos.system('ls')",
                                  "import os\nos.execv('/bin/ls', ['ls'])", "import ctypes",
                                  "import _posixsubprocess"])
def test_starting_programs_or_native_code_is_refused(code):
    r = run_python(code)
    assert r.status == "refused", (r.status, r.message, r.stderr)


def test_a_huge_allocation_fails_inside_the_limit():
    r = run_python("x = bytearray(50 * 2**30)\nprint(len(x))")
    assert r.status == "memory" and "MB" in r.message and r.stdout == ""


def test_reading_the_home_folder_is_refused(tmp_path):
    secret = Path.home() / f".deepdive-sandbox-secret-{os.getpid()}"
    secret.write_text("do not read")
    try:
        r = run_python(f"print(open({str(secret)!r}).read())")
        assert r.status == "refused" and "reading" in r.message
        assert "do not read" not in r.stdout
        r = run_python(f"import os\nprint(os.listdir({str(Path.home())!r}))")
        assert r.status == "refused" and "listing" in r.message
    finally:
        secret.unlink()


def test_opening_a_socket_is_refused():
    for code in ("import socket\nsocket.create_connection(('127.0.0.1', 80), timeout=1)",
                 "import _socket\n_socket.socket()", "import urllib.request\nurllib.request.urlopen('http://x')"):
        r = run_python(code)
        assert r.status == "refused", (code, r.status, r.message)


def test_writing_outside_its_folder_is_refused(tmp_path):
    target = tmp_path / "evil.txt"
    for code in (f"open({str(target)!r}, 'w').write('x')", f"import os\nos.open({str(target)!r}, os.O_CREAT | os.O_WRONLY)",
                 f"import os\nos.remove({str(tmp_path)!r} + '/none')", f"import os\nos.mkdir({str(tmp_path)!r} + '/d')"):
        r = run_python(code)
        assert r.status == "refused", (code, r.status, r.message)
    assert list(tmp_path.iterdir()) == []


def test_printing_100_mb_is_stopped_and_only_the_cap_is_kept():
    r = run_python("print('x' * 100_000_000)", Limits(output_bytes=4096))
    assert r.status == "output" and len(r.stdout) <= 4096


def test_a_program_that_catches_the_refusal_is_still_reported():
    r = run_python("import os\ntry:\n    os.fork()\nexcept PermissionError:\n    print('caught')")
    assert r.status == "refused" and r.stdout == "caught\n"


def test_a_syntax_error_is_an_error_with_the_program_traceback_only():
    r = run_python("print(")
    assert r.status == "error" and "SyntaxError" in r.message
    assert "<string>" not in r.stderr  # the guard's own frames are not shown


def test_cancel_stops_a_running_program():
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    r = run_python("import time\ntime.sleep(30)", Limits(wall_seconds=30), cancel=cancel)
    assert r.status == "timeout" and r.message == "stopped: cancelled" and r.seconds < 10


def test_the_result_says_how_strongly_it_was_isolated_and_doctor_agrees(monkeypatch):
    from lab.doctor import sandbox_line
    from lab.sandbox import FORCED_WEAK, STRONG, WEAK, isolation

    monkeypatch.delenv("DEEPDIVE_LAB_SANDBOX", raising=False)
    level = isolation()
    assert level in (STRONG, WEAK)
    assert run_python("print(1)").isolation == level and sandbox_line().startswith(level)
    monkeypatch.setenv("DEEPDIVE_LAB_SANDBOX", "weak")
    r = run_python("print(1)")
    assert (r.status, r.isolation) == ("ok", FORCED_WEAK) and sandbox_line() == FORCED_WEAK


async def test_the_tool_card_shows_the_isolation_level_of_the_run(monkeypatch):
    """The card's sandbox line, for a real run at the level this host gives and at the forced weak one."""
    from dataclasses import asdict

    from textual.app import App

    from lab.failures import CARD_BY_KEY, Answer
    from lab.sandbox import FORCED_WEAK, isolation
    from screens.widgets.result_view import ResultView
    from tests.helpers import shown

    variant = next(v for v in CARD_BY_KEY["tool"].experiment().variants if v.tool)
    program = 'print("strawberry".count("r"))'

    class Card(App):
        def compose(self):
            yield ResultView(id="view")

    for forced in (False, True):
        if forced:
            monkeypatch.setenv("DEEPDIVE_LAB_SANDBOX", "weak")
        run = asdict(run_python(program))
        app = Card()
        async with app.run_test(size=(80, 24)) as pilot:
            view = app.query_one(ResultView)
            view.reset(variant, 1)
            view.answers[0] = Answer(seed=1, text=program, stop="eos", program=program, run=run)
            view.redraw()
            await pilot.pause()
            text = shown(view)
            assert "sandbox: exited normally" in text and "output: 3" in text
            assert (FORCED_WEAK if forced else isolation()) in text


@pytest.mark.parametrize("code", ["raise SystemExit(152)", "raise SystemExit(137)",  # 128 + SIGXCPU / SIGKILL
                                  "import sys\nsys.stderr.write('MemoryError\\n[sandbox] refused: x\\n')\nsys.exit(1)"])
def test_a_program_cannot_claim_a_limit_or_a_refusal_it_did_not_meet(code):
    """The verdict is the parent's: the kernel's CPU accounting, not the exit code; never the output."""
    r = run_python(code, Limits(cpu_seconds=1))
    assert r.status == "error", (r.status, r.message)
