"""A static KV cache and a compiled decode step for the transformers backend (CUDA by default).

The decode step of a small model on a GPU is bound by kernel launches and Python, not by
arithmetic: transformers' `StaticCache` gives it fixed shapes, so `torch.compile` (mode
"reduce-overhead": CUDA graphs) can replay a whole step as one graph. Compiling takes tens of
seconds, so it runs once, in the background, on this decoder's own thread, while the backend
keeps serving tokens the eager way; `status` says what is going on for a screen to show.

Every call on the static cache (prompt, steps, the warm-up) runs on that one thread: CUDA graphs
recorded by `torch.compile` belong to the thread that recorded them, and the screens' workers are
new threads each time.

    dec = StaticDecoder(model, cache_kw="cache", max_len=4096, compile_options={"mode": "reduce-overhead"})
    dec.start_compile()                 # returns at once; dec.ready turns True when done
    logits = dec.prompt([1, 2, 3])      # (1, vocab) float32 tensor after the prompt (batch=1)
    logits = dec.step([42])             # after one more token per row
    dec.crop(3)                         # back to the state after the prompt

Not thread-safe on its own: the backend calls it under its lock.
"""

from __future__ import annotations

import queue
import threading
import warnings
from concurrent.futures import Future

COMPILING = "compiling the decode step, first time only"


class StaticDecoder:
    def __init__(self, model, cache_kw: str, max_len: int, compile_options: dict | None,
                 keep_kw: str | None = "logits_to_keep", batch: int = 1) -> None:
        import torch
        from transformers import StaticCache

        self._torch = torch
        self.model = model
        self.max_len = int(max_len)
        self.batch = int(batch)  # rows: every call gives logits of shape (batch, vocab)
        self._cache_kw = cache_kw
        self._extra = {keep_kw: 1} if keep_kw else {}
        self._cache = StaticCache(config=model.config, max_cache_len=self.max_len)
        self.length = 0  # tokens in the cache
        self.busy = False  # held by a running batch (the backend's flag)
        self._compile_options = compile_options
        self._compiled = None
        self._jobs: queue.Queue = queue.Queue()
        self._closed = False
        # A daemon thread: quitting the app in the middle of a compile does not wait for it.
        threading.Thread(target=self._serve, name="deepdive-decode", daemon=True).start()
        self._ready = threading.Event()
        self.status = ""
        if compile_options is None:  # eager static cache: nothing to wait for
            self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            fn, args, future = job
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:  # handed to the caller by future.result()
                    future.set_exception(exc)

    def _submit(self, fn, *args) -> Future:
        if self._closed:
            raise RuntimeError("this decoder is closed")
        future: Future = Future()
        self._jobs.put((fn, args, future))
        return future

    def start_compile(self) -> None:
        """Compile and warm the decode step in the background (once); returns at once."""
        if self.ready or self.status == COMPILING:
            return
        self.status = COMPILING
        self._submit(self._warm)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the compiled step is ready (benchmarks, tests); False on timeout."""
        return self._ready.wait(timeout)

    def _warm(self) -> None:
        torch = self._torch
        try:
            limits = torch._dynamo.config  # one graph per batch size and cache: more than the default 8
            if getattr(limits, "recompile_limit", 64) < 64:
                limits.recompile_limit = 64
            self._compiled = torch.compile(self.model.__call__, **self._compile_options)
            self._prompt([0])
            for _ in range(3):  # compile, then CUDA-graph warm-up and recording
                self._step([0] * self.batch)
            self.status = "decode step compiled"
        except Exception as exc:  # a compiler missing or failing: stay eager, say so
            self._compiled = None
            self.status = f"decode step not compiled ({exc.__class__.__name__}: {(str(exc).splitlines() or [''])[0][:120]})"
        finally:
            try:
                self._reset()
            finally:
                self._ready.set()

    def _call(self, fn, *args):
        return self._submit(fn, *args).result()

    def _run(self, forward, rows: list[list[int]]):
        torch = self._torch
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x = torch.tensor(rows, device=self.model.device)
            out = forward(input_ids=x, use_cache=True, **{self._cache_kw: self._cache}, **self._extra)
        self.length += len(rows[0])
        # A CUDA graph's output is overwritten by its next replay: copy the rows out.
        return out.logits[:, -1].to(torch.float32, copy=True)

    def _reset(self) -> None:
        with self._torch.no_grad():  # as generate() runs it
            self._cache.reset()  # every layer's length back to 0, whatever a failed call left
        self.length = 0

    def _prompt(self, ids: list[int]):
        self._reset()
        return self._run(self.model, [ids] * self.batch)

    def _step(self, tokens: list[int]):
        return self._run(self._compiled or self.model, [[t] for t in tokens])

    def _crop(self, keep: int) -> None:
        if keep < self.length:
            with self._torch.no_grad():
                self._cache.crop(keep - self.length)  # negative: remove that many (stale entries stay masked)
            self.length = keep

    def prompt(self, ids: list[int]):
        """Logits (batch, vocab) after `ids` evaluated as one prompt from position 0 in every row
        (eager: prompt shapes vary)."""
        return self._call(self._prompt, [int(i) for i in ids])

    def step(self, tokens: list[int]):
        """Logits (batch, vocab) after one more token per row (the compiled step once ready)."""
        assert len(tokens) == self.batch
        return self._call(self._step, [int(t) for t in tokens])

    def crop(self, keep: int) -> None:
        """Forget every position from `keep` on."""
        self._call(self._crop, int(keep))

    def close(self) -> None:
        """Stop the thread once the jobs already given are done (a compile under way finishes on its own)."""
        self._closed = True
        self._jobs.put(None)
