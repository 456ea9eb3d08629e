"""llama.cpp backend (llama-cpp-python): any GGUF file, CPU or GPU offload.

- Never writes to stdout/stderr: llama.cpp's log callback is replaced by one that drops
  everything, and llama-cpp-python's fd-level redirect (which would swallow a TUI's
  frames mid-load) is replaced by a no-op.
- Canonical evaluation (see `lab.backends.base`): a prompt is decoded in batches of
  `n_batch` from position 0, each later token alone. llama.cpp's numbers depend on the
  batch a token is decoded in, so this is what makes a state a function of its ids.
- KV cache reuse: a request that extends (or branches from) the cached state past its
  prompt evaluates only the new tokens, one at a time; `tokens_evaluated` counts what ran.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Sequence

import numpy as np

from lab.backends.base import Backend
from lab.errors import BackendUnavailableError, CorruptModelError, LabError, ModelOutOfMemoryError
from lab.gguf_file import inspect_gguf
from lab.paths import weights_stamp
from lab.types import Capabilities, CatalogueEntry, ModelInfo

_silenced = False
_silence_lock = threading.Lock()
_log_callback = None  # keep a reference: llama.cpp holds the C pointer


def _import_llama_cpp():
    """Import llama_cpp and make it silent (once)."""
    global _silenced, _log_callback
    try:
        import llama_cpp
        import llama_cpp._internals as internals
        import llama_cpp.llama as llama_mod
    except Exception as exc:  # ImportError, or a broken native library (OSError)
        raise BackendUnavailableError(f"llama-cpp-python cannot be imported: {exc}.") from exc
    with _silence_lock:
        if not _silenced:
            @llama_cpp.llama_log_callback
            def _drop(level, text, user_data):  # noqa: ARG001
                return None

            _log_callback = _drop
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
            internals.suppress_stdout_stderr = lambda disable=True: contextlib.nullcontext()
            llama_mod.suppress_stdout_stderr = lambda disable=True: contextlib.nullcontext()
            _silenced = True
    return llama_cpp


def llama_cpp_version() -> str:
    try:
        from importlib.metadata import version

        return version("llama-cpp-python")
    except Exception:
        return "not installed"


def gpu_offload_supported() -> bool:
    try:
        return bool(_import_llama_cpp().llama_supports_gpu_offload())
    except LabError:
        return False


class LlamaCppBackend(Backend):
    def __init__(self, llm, info: ModelInfo, gpu: bool) -> None:
        super().__init__()
        self._lc = _import_llama_cpp()
        self.llm = llm
        self.info = info
        self._vocab = llm._model.vocab
        self._ctx = llm._ctx.ctx
        self._template = llm.metadata.get("tokenizer.chat_template")
        self.capabilities = Capabilities(
            supports_logprobs=True,
            supports_hidden_states=False,
            supports_chat_template=bool(self._template),
            supports_gpu=gpu,
            supports_kv_cache=True,
        )
        self._eos: frozenset[int] | None = None
        self._attrs: dict[int, int] = {}
        self._evaluated: list[int] = []  # ids whose state is in the KV cache
        self._state_prompt = 0  # how many of them were evaluated as the prompt
        self._last: np.ndarray | None = None  # logits after self._evaluated

    @classmethod
    def load(cls, entry: CatalogueEntry, device: str = "auto", n_ctx: int = 4096) -> "LlamaCppBackend":
        summary = inspect_gguf(entry.path)  # typed errors for missing/truncated/not-a-GGUF files
        stamp = weights_stamp(entry.path)
        lc = _import_llama_cpp()
        from llama_cpp import Llama

        dev = (device or "auto").lower()
        want_gpu = dev in ("auto", "gpu", "cuda", "mps") and bool(lc.llama_supports_gpu_offload())
        if dev in ("gpu", "cuda", "mps") and not want_gpu:
            raise LabError("this llama.cpp build has no GPU support.",
                           "Reinstall llama-cpp-python with CMAKE_ARGS for your GPU, or use --device cpu.")
        ctx = min(n_ctx, summary.context_length) if summary.context_length else n_ctx
        try:
            llm = Llama(model_path=entry.path, n_ctx=ctx, n_gpu_layers=-1 if want_gpu else 0,
                        logits_all=False, verbose=False)
        except MemoryError as exc:
            raise ModelOutOfMemoryError(f"out of memory loading {entry.name}.") from exc
        except (ValueError, RuntimeError) as exc:
            raise CorruptModelError(f"llama.cpp could not load {entry.path}: {exc}") from exc
        info = ModelInfo(
            name=entry.name,
            architecture=summary.architecture,
            parameters=int(llm._model.n_params()) or summary.parameters,
            vocab_size=int(llm.n_vocab()),
            context_length=int(llm.n_ctx()),
            quantisation=summary.file_type,
            backend="llama.cpp",
            device="gpu (all layers)" if want_gpu else "cpu",
            has_chat_template=summary.has_chat_template,
            source=entry.source or entry.path,
            stamp=stamp,
        )
        return cls(llm, info, want_gpu)

    # ---- primitives -----------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        data = text.encode("utf-8", errors="surrogatepass")
        if not data:
            return [self.llm.token_bos()] if add_special and self.llm._model.add_bos_token() else []
        return self.llm.tokenize(data, add_bos=add_special, special=parse_special)

    def _token_bytes(self, token_id: int) -> bytes:
        # A buffer per call: pieces may be asked for from the UI thread while a worker decodes.
        lc = self._lc
        buf = ctypes.create_string_buffer(64)
        n = lc.llama_token_to_piece(self._vocab, token_id, buf, len(buf), 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = lc.llama_token_to_piece(self._vocab, token_id, buf, -n, 0, True)
        return buf.raw[:n]

    def _attr(self, token_id: int) -> int:
        a = self._attrs.get(token_id)
        if a is None:
            a = self._attrs[token_id] = int(self._lc.llama_vocab_get_attr(self._vocab, token_id))
        return a

    def _is_special(self, token_id: int) -> bool:
        return bool(self._attr(token_id) & self._lc.LLAMA_TOKEN_ATTR_CONTROL)

    @property
    def eos_ids(self) -> frozenset[int]:
        if self._eos is None:
            lc = self._lc
            ids = {int(self.llm.token_eos())}
            eot = int(lc.llama_vocab_eot(self._vocab))
            if eot >= 0:
                ids.add(eot)
            for tid in range(self.info.vocab_size):  # end-of-generation tokens (<|im_end|>, <end_of_turn>, ...)
                if lc.llama_vocab_is_eog(self._vocab, tid):
                    ids.add(tid)
            self._eos = frozenset(i for i in ids if i >= 0)
        return self._eos

    def _chat_template(self) -> str | None:
        return self._template

    def _special_tokens(self) -> dict[str, str]:
        def text(tid: int) -> str:
            return self.token_bytes(tid).decode("utf-8", "replace") if tid >= 0 else ""

        return {"bos_token": text(self.llm.token_bos()), "eos_token": text(self.llm.token_eos())}

    def _template_source(self) -> str:
        return "GGUF metadata (tokenizer.chat_template)"

    def _decode(self, chunk: list[int], start: int) -> None:
        """Decode `chunk` at positions start.. on top of the first `start` cached positions."""
        llm = self.llm
        llm._batch.set_batch(batch=chunk, n_past=start, logits_all=False)
        llm._ctx.decode(llm._batch)
        llm.input_ids[start:start + len(chunk)] = chunk
        llm.n_tokens = start + len(chunk)
        self.tokens_evaluated += len(chunk)

    def _read_logits(self) -> np.ndarray:
        ptr = self._lc.llama_get_logits_ith(self._ctx, -1)
        return np.ctypeslib.as_array(ptr, shape=(self.info.vocab_size,)).copy()

    def _forget(self, keep: int) -> None:
        """Drop the cached state from position `keep` on."""
        self.llm.n_tokens = keep
        self.llm._ctx.kv_cache_seq_rm(-1, keep, -1)
        self._evaluated, self._last = self._evaluated[:keep], None
        if keep == 0:
            self._state_prompt = 0

    def _last_logits(self, ids: Sequence[int], prompt_len: int) -> np.ndarray:
        ids = list(ids)
        keep, ready = self._plan(ids, prompt_len, self._evaluated, self._state_prompt, self._last)
        if ready is not None:
            return ready
        self._forget(keep)
        try:
            if keep == 0:  # the prompt, in batches of n_batch from position 0
                for start in range(0, prompt_len, self.llm.n_batch):
                    self._decode(ids[start:min(prompt_len, start + self.llm.n_batch)], start)
                self._state_prompt = prompt_len
                self._last = self._read_logits()
                self._remember_prompt(ids[:prompt_len], self._last)
                keep = prompt_len
            for pos in range(keep, len(ids)):  # every later token alone, as a stream makes them
                self._decode([ids[pos]], pos)
            if keep < len(ids):
                self._last = self._read_logits()
        except MemoryError as exc:
            self._forget(0)
            raise ModelOutOfMemoryError("out of memory running the model.") from exc
        except RuntimeError as exc:  # decode failed (e.g. context full)
            self._forget(0)
            raise LabError(f"llama.cpp failed to evaluate the sequence: {exc}") from exc
        self._evaluated = ids
        return self._last

    def _position_logits(self, ids: Sequence[int]) -> np.ndarray:
        """Logits after every prefix of `ids` (row i: after ids[:i+1]), in one pass from position 0
        (a function of `ids` alone). The cached state is dropped: asking for every position's logits
        changes llama.cpp's batch shapes, so it is not the canonical state of `ids`."""
        ids = list(ids)
        llm, lc = self.llm, self._lc
        rows = np.empty((len(ids), self.info.vocab_size), dtype=np.float32)
        self._forget(0)
        try:
            for start in range(0, len(ids), llm.n_batch):
                chunk = ids[start:start + llm.n_batch]
                llm._batch.set_batch(batch=chunk, n_past=start, logits_all=True)
                llm._ctx.decode(llm._batch)
                for j in range(len(chunk)):
                    ptr = lc.llama_get_logits_ith(self._ctx, j)
                    rows[start + j] = np.ctypeslib.as_array(ptr, shape=(self.info.vocab_size,))
        except RuntimeError as exc:
            raise LabError(f"llama.cpp failed to evaluate the sequence: {exc}") from exc
        finally:
            self._forget(0)
        self.tokens_evaluated += len(ids)
        return rows

    def close(self) -> None:
        with self.lock:  # never while a forward pass runs in another thread
            llm, self.llm = self.llm, None
            if llm is not None:
                llm.close()
