"""A hostile corpus: programs of a few lines that try to read or write outside, start processes,
reach the network, switch the guard off from inside, or exhaust resources. After each, whatever
its verdict: no canary was read or touched, nothing appeared outside, the loopback listener got no
connection, no process of the run survives, the test's own processes are alive and no temporary
folder is left behind. The corpus runs at the level this host gives (strong where namespaces
work); a few simple cases also run at the forced weak level, which must still refuse them."""

from __future__ import annotations

import os
import secrets
import select
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from string import Template

import pytest

from lab import sandbox
from lab.sandbox import STRONG, Limits, isolation, run_python

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the corpus checks /proc (Linux)")

# (id, program, statuses it may end with: None = any). $CANARY, $CANARY_DIR, $HOME_CANARY, $TARGET,
# $PORT and $SENTINEL are filled in per test.
CORPUS = [
    # reading outside its folder
    ("read-open", "print(open('$CANARY').read())", None),
    ("read-os-open", "import os\nfd = os.open('$CANARY', os.O_RDONLY)\nprint(os.read(fd, 100))", None),
    ("read-pathlib", "import pathlib\nprint(pathlib.Path('$CANARY').read_text())", None),
    ("read-fileio", "import io\nprint(io.FileIO('$CANARY').read())", None),
    ("read-linecache", "import linecache\nprint(linecache.getline('$CANARY', 1))", None),
    ("read-loader", "from importlib.machinery import SourceFileLoader as L\nprint(L('x', '$CANARY').get_data('$CANARY'))",
     None),
    ("read-home", "print(open('$HOME_CANARY').read())", None),
    ("list-folder", "import os\nprint(os.listdir('$CANARY_DIR'))", None),
    ("read-dir-fd", "import os\nfd = os.open(os.path.dirname(os.__file__), os.O_RDONLY)\n"
                    "rel = '../' * 12 + '$CANARY'.lstrip('/')\nprint(os.read(os.open(rel, os.O_RDONLY, dir_fd=fd), 99))",
     None),
    ("read-fchdir", "import os\nos.fchdir(os.open('/', os.O_RDONLY))\nprint(open('$CANARY'.lstrip('/')).read())", None),
    ("read-symlink", "import os\nos.symlink('$CANARY', 'link')\nprint(open('link').read())", None),
    ("read-hardlink", "import os\nos.link('$CANARY', 'hard')\nprint(open('hard').read())", None),
    ("read-proc-root", "print(open('/proc/1/root$CANARY').read())", None),
    ("read-proc-cwd", "import os\nprint(open('/proc/%d/cwd/../../..$CANARY' % os.getppid()).read())", None),
    ("read-sqlite", "import sqlite3\nc = sqlite3.connect('$CANARY')\nprint(c.execute('select 1').fetchall())", None),
    ("read-pwd", "import pwd\nprint([p.pw_name for p in pwd.getpwall()])", None),
    # writing outside its folder
    ("write-open", "open('$TARGET', 'w').write('x')", None),
    ("write-os-open", "import os\nos.write(os.open('$TARGET', os.O_CREAT | os.O_WRONLY), b'x')", None),
    ("write-mkdir", "import os\nos.mkdir('$TARGET')", None),
    ("write-mkfifo", "import os\nos.mkfifo('$TARGET')", None),
    ("write-mknod", "import os, stat\nos.mknod('$TARGET', stat.S_IFIFO | 0o600)", None),
    ("write-replace", "import os\nos.replace('program.py', '$CANARY')", None),
    ("write-remove", "import os\nos.remove('$CANARY')", None),
    ("write-chmod", "import os\nos.chmod('$CANARY', 0)", None),
    ("write-truncate", "import os\nos.truncate('$CANARY', 0)", None),
    ("write-utime", "import os\nos.utime('$CANARY', (0, 0))", None),
    ("write-symlink", "import os\nos.symlink('$TARGET', 'l')\nopen('l', 'w').write('x')", None),
    ("write-dir-fd", "import os\nfd = os.open(os.path.dirname(os.__file__), os.O_RDONLY)\n"
                     "rel = '../' * 12 + '$TARGET'.lstrip('/')\nos.open(rel, os.O_CREAT | os.O_WRONLY, dir_fd=fd)", None),
    ("write-shutil", "import shutil\nshutil.copy('program.py', '$TARGET')", None),
    # processes and network
    ("fork-bomb", "import os\nwhile True:\n    os.fork()", None),
    ("fork-setsid", "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)", None),
    ("popen", "import subprocess\nsubprocess.Popen(['sleep', '60'])", None),
    ("system", "import os\nos.system('sleep 60 &')", None),
    ("posix-spawn", "import os\nos.posix_spawn('/bin/sleep', ['sleep', '60'], {})", None),
    ("multiprocessing", "import multiprocessing, time\nmultiprocessing.Process(target=time.sleep, args=(60,)).start()", None),
    ("kill-sentinel", "import os\nos.kill($SENTINEL, 9)", None),
    ("kill-all", "import os\nos.kill(-1, 9)", None),
    ("kill-parent", "import os\nos.kill(os.getppid(), 9)", None),
    ("pidfd-signal", "import os, _signal\n_signal.pidfd_send_signal(os.pidfd_open($SENTINEL), 9)", None),
    ("connect", "import socket\nsocket.create_connection(('127.0.0.1', $PORT), timeout=1).send(b'x')", None),
    ("urlopen", "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:$PORT/', timeout=1)", None),
    ("asyncio", "import asyncio\nasyncio.run(asyncio.open_connection('127.0.0.1', $PORT))", None),
    # switching the guard off from inside
    ("guard-main", "import __main__\nfor k, v in list(vars(__main__).items()):\n    print(k)\n"
                   "print(open('$CANARY').read())", None),
    ("guard-frames", "import sys\nf = sys._getframe(1)\nwhile f:\n    f.f_globals.pop('hook', None)\n    f = f.f_back\n"
                     "print(open('$CANARY').read())", None),
    ("guard-gc", "import gc\nfor o in gc.get_objects():\n    if isinstance(o, set):\n        o.add(__import__('_thread')"
                 ".get_ident())\nprint(open('$CANARY').read())", None),
    ("guard-realpath", "import os.path\nos.path.realpath = lambda p: os.getcwd()\nprint(open('$CANARY').read())", None),
    ("guard-any", "import builtins\nbuiltins.any = lambda *a: True\nbuiltins.isinstance = lambda *a: False\n"
                  "print(open('$CANARY').read())", None),
    ("guard-subinterpreter", "import _xxsubinterpreters as s\ns.run_string(s.create(), \"print(open('$CANARY').read())\")",
     None),
    ("guard-thread-race", "import threading\nout = []\ndef go():\n    for _ in range(200):\n        try:\n"
                          "            out.append(open('$CANARY').read())\n        except OSError:\n            pass\n"
                          "ts = [threading.Thread(target=go) for _ in range(4)]\n[t.start() for t in ts]\n"
                          "[t.join() for t in ts]\nprint(out[:1])", None),
    ("guard-dotted-import", "import importlib.util, glob, os\nso = glob.glob(os.path.dirname(os.__file__) + "
                            "'/lib-dynload/_socket*.so')[0]\nspec = importlib.util.spec_from_file_location('x._socket', so)\n"
                            "m = importlib.util.module_from_spec(spec)\ns = m.socket()\ns.connect(('127.0.0.1', $PORT))",
     None),
    ("guard-ctypes-dotted", "import importlib.util, glob, os\nso = glob.glob(os.path.dirname(os.__file__) + "
                            "'/lib-dynload/_ctypes*.so')[0]\nspec = importlib.util.spec_from_file_location('y._ctypes', so)\n"
                            "m = importlib.util.module_from_spec(spec)\nprint(m.dlopen(None))", None),
    ("forge-verdict", "import sys\nprint('[sandbox] refused: nothing')\nsys.stderr.write('[sandbox] refused: x\\n')",
     {"ok"}),
    # resource abuse
    ("cpu", "while True:\n    pass", {"cpu", "timeout"}),
    ("memory", "x = bytearray(50 * 2**30)", {"memory"}),
    ("output", "print('x' * 100_000_000)", {"output"}),
    ("sleep", "import time\ntime.sleep(60)", {"timeout"}),
    ("big-file", "open('big', 'wb').write(b'x' * 50_000_000)", {"error", "memory"}),
    ("many-files", "for i in range(100_000):\n    with open(f'f{i}', 'wb') as f:\n        f.write(b'x' * 4096)",
     {"error", "cpu", "timeout"}),  # strong: its 16 MB folder fills; weak: the host disk, until the timeout
    ("fill-tmp", "for i in range(100_000):\n    open(f'/tmp/f{i}', 'wb').write(b'x' * 4096)", None),
    ("many-fds", "fs = [open('program.py') for _ in range(100_000)]", {"error"}),
    ("thread-bomb", "import threading, time\nfor _ in range(10_000):\n    threading.Thread(target=time.sleep, "
                    "args=(60,)).start()", {"error", "memory", "timeout"}),
    ("chmod-0-folder", "import os\nos.makedirs('d/e')\nopen('d/e/f', 'w').write('x')\nos.chmod('d/e', 0)\n"
                       "os.chmod('d', 0)\nos.chmod('.', 0)", None),
]


@pytest.fixture(scope="module")
def sentinel():
    """A process of the test's own that programs try to kill."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def world(tmp_path, sentinel):
    """Canaries with random tokens (one in a temporary folder, one in the home folder), a target that
    must stay absent, and a loopback listener that must get no connection."""
    token, name = secrets.token_hex(16), secrets.token_hex(8)
    canary = tmp_path / f"canary-{name}.txt"
    canary.write_text(f"secret {token}\n")
    home_canary = Path.home() / f".deepdive-canary-{name}"
    home_canary.write_text(f"secret {token}\n")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    w = {"token": token, "name": name, "canary": canary, "home": home_canary, "dir": tmp_path, "target": tmp_path / "target",
         "listener": listener, "sentinel": sentinel, "before": _stat(canary), "listing": sorted(os.listdir(tmp_path)),
         "temps": _sandbox_temps()}
    yield w
    listener.close()
    home_canary.unlink(missing_ok=True)


def _stat(path: Path) -> tuple:
    st = path.stat()
    return path.read_bytes(), st.st_mode, st.st_mtime_ns, st.st_ino


def _sandbox_temps() -> set[str]:
    return {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("deepdive-sandbox-")}


def _survivors(marker: str) -> list[int]:
    """Processes whose command line carries this run's marker (bubblewrap and the interpreter do)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker.encode() in args:
            found.append(int(pid))
    return found


def _run(world: dict, program: str, hook: bool = True, **kwargs):
    world["names_canary"] = "$CANARY'" in program or "$HOME_CANARY" in program  # a traceback may show the name
    code = Template(program).safe_substitute(
        CANARY=world["canary"], CANARY_DIR=world["dir"], HOME_CANARY=world["home"], TARGET=world["target"],
        PORT=world["listener"].getsockname()[1], SENTINEL=world["sentinel"].pid)
    memory = 256 * 2**20 + secrets.randbelow(10**6) * 4096  # unique: it is on the child's command line
    limits = Limits(wall_seconds=2, cpu_seconds=1, memory_bytes=memory, output_bytes=16384)
    if hook:
        return run_python(code, limits, **kwargs), str(memory)
    return sandbox._run(code, limits, None, strong=True, audit=False), str(memory)


def _assert_contained(world: dict, r, marker: str) -> None:
    shown = r.stdout + r.stderr + r.message
    assert world["token"] not in shown, "a canary was read"
    assert world["names_canary"] or world["name"] not in shown, "the canary's folder was listed"
    assert _stat(world["canary"]) == world["before"], "the canary was touched"
    assert world["home"].read_text() == f"secret {world['token']}\n"
    assert not os.path.lexists(world["target"]) and sorted(os.listdir(world["dir"])) == world["listing"]
    assert select.select([world["listener"]], [], [], 0.05)[0] == [], "the listener got a connection"
    assert _survivors(marker) == [], "a process of the run survived"
    assert world["sentinel"].poll() is None and os.kill(os.getpid(), 0) is None  # the "app" is alive
    assert _sandbox_temps() <= world["temps"], "a temporary folder was left behind"
    assert r.status != "unavailable", r.message


NAMESPACES_ONLY = pytest.param(False, id="namespaces-alone", marks=pytest.mark.skipif(
    isolation() != STRONG, reason="this host has no namespaces"))


@pytest.mark.parametrize("hook", [pytest.param(True, id="as-shipped"), NAMESPACES_ONLY])
@pytest.mark.parametrize("program,statuses", [(p, s) for _, p, s in CORPUS], ids=[i for i, _, _ in CORPUS])
def test_a_hostile_program_is_contained(world, program, statuses, hook):
    """As shipped (the level this host gives), and, where namespaces work, with the audit hook left
    out: what a program that switched the guard off would face."""
    r, marker = _run(world, program, hook)
    _assert_contained(world, r, marker)
    if statuses is not None:
        assert r.status in statuses, (r.status, r.message, r.stderr[-300:])


def test_the_corpus_covers_at_least_40_programs_in_every_family():
    ids = [i for i, _, _ in CORPUS]
    assert len(ids) == len(set(ids)) >= 40
    for family in ("read-", "write-", "fork", "kill", "connect", "guard-", "cpu", "memory"):
        assert any(i.startswith(family) for i in ids), family


@pytest.mark.skipif(isolation() != STRONG, reason="this host has no namespaces; the strong level is not used")
def test_the_strong_level_is_what_the_card_and_the_result_say():
    r = run_python("import os\nprint(os.getuid(), os.getpid())\n"
                   "print(*[d for d in ('/home', '/etc', '/work', '/var', '/srv', '/root/.cache') if os.path.exists(d)])")
    assert r.status == "ok" and r.isolation == STRONG
    ids, seen = r.stdout.split("\n")[:2]
    assert ids == "65534 1"  # not root, and PID 1 of its own namespace
    assert seen == ""  # only what Python needs is there


@pytest.mark.skipif(isolation() != STRONG, reason="this host has no namespaces; the strong level is not used")
def test_the_kernel_refuses_what_the_guard_would_have_refused():
    """Past the guard (the hook left out), the program still cannot see the project or /etc, start a
    process, make a namespace, trace or mount: seccomp and the namespaces refuse in the kernel."""
    project = Path(__file__).resolve().parent
    r = run_python(f"import os\nprint(os.path.exists({str(project)!r}), os.path.exists('/etc/passwd'))")
    assert r.stdout.split() == ["False", "False"]
    calls = "import ctypes\nlibc = ctypes.CDLL(None)\nprint(libc.fork(), libc.unshare(0x10000000), " \
            "libc.ptrace(16, 1, 0, 0), libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))"
    r = sandbox._run(calls, Limits(), None, strong=True, audit=False)  # the hook would refuse ctypes
    assert (r.status, r.stdout.split()) == ("ok", ["-1"] * 4), (r.status, r.stdout, r.stderr)


# corpus id -> the verdict at the weak level (the audit hook refuses; a chmod 0 inside its folder is allowed)
WEAK_CASES = {i: {"refused"} for i in ("read-open", "read-dir-fd", "write-open", "write-mkfifo", "connect",
                                       "fork-bomb", "kill-sentinel", "pidfd-signal", "popen", "guard-realpath")}
WEAK_CASES.update({"forge-verdict": {"ok"}, "chmod-0-folder": {"ok"}})


@pytest.mark.parametrize("case", sorted(WEAK_CASES))
def test_the_weak_fallback_still_refuses_the_simple_cases(world, case):
    program = next(p for i, p, _ in CORPUS if i == case)
    r, marker = _run(world, program, weak=True)
    assert r.isolation.startswith("weak") and r.status in WEAK_CASES[case], (r.status, r.message)
    _assert_contained(world, r, marker)


def test_forcing_the_weak_level_by_environment_says_so_on_the_result(monkeypatch):
    monkeypatch.setenv("DEEPDIVE_LAB_SANDBOX", "weak")
    r = run_python("print(2 + 2)")
    assert (r.status, r.stdout) == ("ok", "4\n") and r.isolation.startswith("weak — ")


def test_a_signal_from_outside_ends_the_run_not_the_caller():
    """A run killed from outside (as the app's cancel does) leaves no process behind."""
    import threading

    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    memory = 256 * 2**20 + secrets.randbelow(10**6) * 4096
    r = run_python("import time\ntime.sleep(30)", Limits(wall_seconds=30, memory_bytes=memory), cancel=cancel)
    assert r.status == "timeout" and r.message == "stopped: cancelled"
    assert _survivors(str(memory)) == []
