"""Run model-written Python in a separate, locked-down process.

The program runs in a fresh interpreter (`python -I -S`: no site-packages, no user
environment) with an empty environment, in its own temporary folder, and in a new process
group so a timeout kills everything it started. Inside, before the program runs, a small
guard sets resource limits (CPU seconds, address space, file size, open files, processes)
and installs an audit hook that refuses:

- starting processes (fork, exec, spawn, system, subprocess) and signalling others;
- networking (any socket) and the modules that reach around the hook (`ctypes`,
  `_posixsubprocess`, `resource`, ...);
- opening, listing or changing files outside the temporary folder (the standard library
  stays readable so imports work; the user's home folder does not).

The parent enforces the wall-clock timeout and caps the output it keeps; a program that
prints more is stopped. A root user ignores RLIMIT_NPROC, which is why process creation is
also refused by the hook. Headless: no UI import.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass

REFUSED_MARK = "[sandbox] refused: "

# Runs inside the child before the program. Kept to what `sys` and `os` give (already loaded).
_GUARD = r'''
import os, sys
root, prog, cpu_s, mem, fsize = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
readable = tuple(sys.argv[6:]) + (root,)
import resource
for limit, soft, hard in ((resource.RLIMIT_CPU, cpu_s, cpu_s + 1), (resource.RLIMIT_AS, mem, mem),
                         (resource.RLIMIT_FSIZE, fsize, fsize), (resource.RLIMIT_NOFILE, 64, 64),
                         (resource.RLIMIT_CORE, 0, 0), (resource.RLIMIT_NPROC, 0, 0)):
    try:
        resource.setrlimit(limit, (soft, hard))
    except (ValueError, OSError):
        pass
del resource
import traceback
BLOCKED = {"ctypes", "_ctypes", "_posixsubprocess", "subprocess", "multiprocessing", "_multiprocessing",
           "socket", "_socket", "ssl", "_ssl", "resource", "pty", "fcntl", "mmap", "_signal", "signal", "select",
           "selectors", "asyncio", "urllib", "http", "ftplib", "smtplib", "telnetlib", "webbrowser"}
DENY = {"os.fork": "starting a process", "os.forkpty": "starting a process", "os.exec": "starting a program",
        "os.posix_spawn": "starting a program", "os.spawn": "starting a program", "os.system": "running a shell",
        "os.startfile": "starting a program", "subprocess.Popen": "starting a program",
        "os.kill": "signalling a process", "os.killpg": "signalling a process",
        "resource.setrlimit": "changing its limits", "resource.prlimit": "changing its limits",
        "sys.remote_exec": "attaching to a process", "os.chroot": "changing root"}
WRITES = ("os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.symlink", "os.link", "os.chmod", "os.chown",
          "os.truncate", "os.utime", "os.chdir", "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr")
LISTS = ("os.listdir", "os.scandir", "os.getxattr", "os.listxattr")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
DEVICES = ("/dev/null", "/dev/urandom", "/dev/random")
busy = [False]

def under(path, roots):
    if isinstance(path, int):
        return True  # an already-open descriptor
    try:
        path = os.fsdecode(path)
    except TypeError:
        return False
    full = os.path.realpath(os.path.join(root, path))
    return full in DEVICES or any(full == r or full.startswith(r + os.sep) for r in roots)

def refuse(what):
    os.write(2, ("\n" + "''' + REFUSED_MARK + r'''" + what + "\n").encode("utf-8", "replace"))
    raise PermissionError("sandbox: refused " + what)

def hook(event, args):
    if busy[0]:
        return
    busy[0] = True
    try:
        if event in DENY:
            refuse(DENY[event])
        elif event.startswith(("socket.", "ctypes.", "winreg.")):
            refuse("network access" if event.startswith("socket.") else "native code (" + event + ")")
        elif event == "import":
            if args[0].partition(".")[0] in BLOCKED:
                refuse("importing " + args[0])
        elif event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & WRITE_FLAGS)
            if writing and not under(path, (root,)):
                refuse("writing " + os.fsdecode(path) + " (outside its folder)")
            if not writing and not under(path, readable):
                refuse("reading " + os.fsdecode(path) + " (outside its folder)")
        elif event in WRITES:
            for p in args:
                if isinstance(p, (str, bytes, os.PathLike)) and not under(p, (root,)):
                    refuse(event[3:] + " " + os.fsdecode(p) + " (outside its folder)")
        elif event in LISTS:
            p = args[0] if args else "."
            if p is not None and not under(p if p != "" else ".", readable):
                refuse("listing " + os.fsdecode(p) + " (outside its folder)")
    finally:
        busy[0] = False

with open(prog, encoding="utf-8", errors="replace") as f:
    source = f.read()
sys.argv = [prog]
sys.addaudithook(hook)
try:
    exec(compile(source, "program.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
except SystemExit:
    raise
except BaseException as exc:  # the program's traceback, without the guard's own frames
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "program.py"]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
    sys.stderr.write("".join(lines))
    sys.stderr.flush()
    os._exit(1)
'''


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 5.0
    cpu_seconds: int = 3
    memory_bytes: int = 512 * 2**20
    file_bytes: int = 1 * 2**20
    output_bytes: int = 64 * 1024  # kept per stream; more stops the program


@dataclass(frozen=True)
class SandboxResult:
    """What happened to one program."""

    status: str  # ok | error | refused | timeout | cpu | memory | output | unavailable
    stdout: str
    stderr: str
    returncode: int | None
    seconds: float
    message: str  # one line for a person

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def available() -> str | None:
    """None when programs can run here; otherwise why not."""
    if os.name != "posix":
        return "the sandbox needs a POSIX system (resource limits and process groups)."
    return None


@functools.lru_cache(maxsize=1)
def _readable_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib") if paths.get(k)}
    return tuple(sorted(roots))


def run_python(code: str, limits: Limits = Limits(), cancel: threading.Event | None = None) -> SandboxResult:
    """Run `code` in the sandbox and report what happened. Never raises for the program's sake."""
    why = available()
    if why:
        return SandboxResult("unavailable", "", "", None, 0.0, why)
    folder = os.path.realpath(tempfile.mkdtemp(prefix="deepdive-sandbox-"))
    try:
        prog = os.path.join(folder, "program.py")
        with open(prog, "w", encoding="utf-8") as f:
            f.write(code)
        argv = [sys.executable, "-I", "-S", "-c", _GUARD, folder, prog, str(limits.cpu_seconds),
                str(limits.memory_bytes), str(limits.file_bytes), *_readable_roots()]
        return _supervise(argv, folder, limits, cancel)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _supervise(argv: list[str], folder: str, limits: Limits, cancel: threading.Event | None) -> SandboxResult:
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, cwd=folder, env={}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, close_fds=True)
    except OSError as exc:
        return SandboxResult("unavailable", "", "", None, 0.0, f"could not start Python: {exc}")
    overflow = threading.Event()
    kept = {"out": bytearray(), "err": bytearray()}

    def drain(stream, buf: bytearray) -> None:
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                break
            room = limits.output_bytes - len(buf)
            if room > 0:
                buf.extend(chunk[:room])
            if len(chunk) > room:
                overflow.set()
                _kill(proc)
                break
        stream.close()

    readers = [threading.Thread(target=drain, args=(proc.stdout, kept["out"]), daemon=True),
               threading.Thread(target=drain, args=(proc.stderr, kept["err"]), daemon=True)]
    for r in readers:
        r.start()
    timed_out = cancelled = False
    deadline = t0 + limits.wall_seconds
    while proc.poll() is None:
        if time.perf_counter() > deadline:
            timed_out = True
            _kill(proc)
            break
        if cancel is not None and cancel.is_set():
            cancelled = True
            _kill(proc)
            break
        time.sleep(0.01)
    proc.wait()
    _kill(proc)  # anything left in its process group
    for r in readers:
        r.join(timeout=1.0)
    seconds = time.perf_counter() - t0
    out = kept["out"].decode("utf-8", errors="replace")
    err = kept["err"].decode("utf-8", errors="replace")
    rc = proc.returncode
    status, message = _classify(rc, err, timed_out, cancelled, overflow.is_set(), limits)
    if status != "ok" and REFUSED_MARK in err:  # the hook's own lines are not the program's output
        err = "\n".join(line for line in err.splitlines() if not line.startswith(REFUSED_MARK)).strip("\n")
    return SandboxResult(status, out, err, rc, seconds, message)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def _classify(rc, err: str, timed_out: bool, cancelled: bool, overflow: bool, limits: Limits) -> tuple[str, str]:
    refusals = [line[len(REFUSED_MARK):] for line in err.splitlines() if line.startswith(REFUSED_MARK)]
    if overflow:
        return "output", f"stopped: it printed more than {limits.output_bytes // 1024} KB"
    if cancelled:
        return "timeout", "stopped: cancelled"
    if timed_out:
        return "timeout", f"killed after {limits.wall_seconds:g} s of wall time"
    if rc is not None and rc < 0 and -rc in (getattr(signal, "SIGXCPU", 24), signal.SIGKILL) and not refusals:
        return "cpu", f"killed: used its {limits.cpu_seconds} s of CPU time"
    if refusals:
        return "refused", "refused: " + refusals[0]
    last = next((line for line in reversed(err.splitlines()) if line.strip()), "")
    if "MemoryError" in last:
        return "memory", f"out of memory: over its {limits.memory_bytes // 2**20} MB limit"
    if rc == 0:
        return "ok", "exited normally"
    if rc is not None and rc < 0:
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = f"signal {-rc}"
        return "error", f"killed by {name}"
    return "error", last.strip() or f"exited with status {rc}"
