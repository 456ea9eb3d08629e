"""transformers/torch backend: hub ids, local HF folders, and GGUF files de-quantised.

A GGUF converted by transformers is slow to load (tens of seconds) and cannot be
`save_pretrained`-ed, so the converted weights are cached as safetensors (with the
config and tokenizer) under the lab's cache; the second load reads that folder.
Exposes every layer's hidden state for the logit lens. Runs on CUDA, then MPS, then CPU.
States are computed the canonical way of `lab.backends.base` (the prompt in one pass, each
later token alone), reusing the KV cache where it was computed that way.

On a GPU (CUDA, MPS) a stream samples on the device (`lab.sampling.sample_rows_torch`: one
transfer to the host per token); on the CPU it keeps the exact numpy path. On CUDA a static KV
cache and a decode step compiled in the background (`lab.backends.hf_decode`) take over for the
states started once the compile is done; until then, and beyond the static cache's length, the
dynamic cache serves. The compiled step rounds bf16 a little differently from the eager one, so
on CUDA a seeded sample drawn before the compile finished may differ from one drawn after it;
from then on the same inputs give the same output. `stream_batch` runs N samples of one prompt
in one forward per token (the dynamic cache, eager).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import inspect
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lab.backends.base import Backend
from lab.errors import BackendUnavailableError, CorruptModelError, LabError, ModelOutOfMemoryError, NotAModelError
from lab.gguf_file import inspect_gguf
from lab.paths import cache_dir, weights_stamp
from lab.types import Capabilities, CatalogueEntry, ModelInfo


def _quiet_transformers() -> None:
    """No progress bars or warnings: they would write over a TUI."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:
        pass


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map (used by byte-level BPE vocabularies)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


_BYTE_DECODER = {c: b for b, c in _bytes_to_unicode().items()}


def converted_cache_folder(gguf_path: str) -> Path:
    st = os.stat(gguf_path)
    key = hashlib.sha256(f"{os.path.realpath(gguf_path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "hf-converted" / f"{Path(gguf_path).stem}-{key}"


# torch.compile settings of the decode step on CUDA: what transformers' own generate() uses with a static cache.
CUDA_COMPILE = {"mode": "reduce-overhead", "fullgraph": False, "dynamic": False}


class TransformersBackend(Backend):
    """`decode`: "auto" (CUDA: a static KV cache and a decode step compiled in the background;
    elsewhere the dynamic cache), "dynamic", or "static" (a static cache, compiled with
    `compile_options` when given, eager when None). `device_sampling`: sample with tensor ops
    on the model's device (default: on any device but the CPU, whose numpy path stays exact)."""

    def __init__(self, model, tokenizer, info: ModelInfo, device: str, decode: str = "auto",
                 compile_options: dict | None = None, device_sampling: bool | None = None,
                 static_len: int = 4096) -> None:
        super().__init__()
        import torch

        self._torch = torch
        self.model = model
        self.tok = tokenizer
        self.device = device
        self.info = info
        self.capabilities = Capabilities(
            supports_logprobs=True,
            supports_hidden_states=True,
            supports_chat_template=bool(getattr(tokenizer, "chat_template", None)),
            supports_gpu=device != "cpu",
            supports_kv_cache=True,
        )
        # Byte-level BPE vocabularies (GPT-2 style) spell a leading space as "Ġ", SentencePiece ones as "▁".
        # Ask the tokenizer itself (its vocabulary's order is not stable, so sampling it is not an answer).
        probe = tokenizer.convert_ids_to_tokens(tokenizer(" hello world", add_special_tokens=False)["input_ids"])
        self._byte_level = any(p and p.startswith("Ġ") for p in probe)
        self._special_ids = set(tokenizer.all_special_ids)
        for tid, added in getattr(tokenizer, "added_tokens_decoder", {}).items():
            if getattr(added, "special", False):
                self._special_ids.add(int(tid))
        eos = set()
        for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
            if isinstance(source, int):
                eos.add(source)
            elif source:
                eos.update(int(x) for x in source)
        self._eos = frozenset(eos)
        # transformers 5 renamed `past_key_values` to `cache`; speak whichever this version knows.
        self._cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        self._cache = None  # the KV cache for self._cached_ids
        self._cached_ids: list[int] = []
        self._cached_logits: np.ndarray | None = None
        self._cached_prompt = 0  # how many of the cached ids were evaluated as the prompt
        params = inspect.signature(model.forward).parameters
        self._keep_kw = "logits_to_keep" if "logits_to_keep" in params else None
        self._device_sampling = device != "cpu" if device_sampling is None else bool(device_sampling)
        self._static = None  # a StaticDecoder: used for states started once it is ready
        self._on_static = False  # whether the cached state lives in the static decoder
        if decode not in ("auto", "dynamic", "static"):
            raise ValueError(f"decode must be auto, dynamic or static, not {decode!r}")
        if decode == "static" or (decode == "auto" and device == "cuda"):
            from lab.backends.hf_decode import StaticDecoder

            options = compile_options if decode == "static" else (compile_options or CUDA_COMPILE)
            self._static_args = (self._cache_kw, min(static_len, info.context_length), options, self._keep_kw)
            try:
                self._static = StaticDecoder(model, *self._static_args)
            except Exception:  # an architecture without a static cache: the dynamic one serves
                self._static = None
            if self._static is not None:
                self._static.start_compile()
        self._batch_decoders: dict[int, object] = {}  # batch size -> StaticDecoder, made on first use

    # ---- loading ------------------------------------------------------------------
    @classmethod
    def load(cls, entry: CatalogueEntry, device: str = "auto") -> "TransformersBackend":
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise BackendUnavailableError(f"the transformers backend cannot start: {exc}.") from exc
        from lab.devices import pick_torch_device

        _quiet_transformers()
        dev = pick_torch_device(device)
        dtype = torch.float32 if dev == "cpu" else (torch.bfloat16 if dev == "cuda" and torch.cuda.is_bf16_supported() else torch.float16)
        quant = "float32" if dtype == torch.float32 else str(dtype).replace("torch.", "")
        source = entry.path or entry.hub_id
        stamp = weights_stamp(entry.path)  # "" for a hub id: the hub cache keys its own revisions
        try:
            if entry.kind == "gguf":
                summary = inspect_gguf(entry.path)
                folder = converted_cache_folder(entry.path)
                if not (folder / "model.safetensors").exists():
                    cls._convert_gguf(entry.path, folder)
                kwargs = {"local_files_only": True}
                target = str(folder)
                quant = f"{summary.file_type} de-quantised to {quant}"
            elif entry.kind == "hf-folder":
                target, kwargs = entry.path, {"local_files_only": True}
            elif entry.kind == "hub":
                target, kwargs = entry.hub_id, {}
            else:
                raise NotAModelError(f"{entry.name} ({entry.kind}) cannot be loaded by transformers.")
            tok = AutoTokenizer.from_pretrained(target, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(target, dtype=dtype, **kwargs)
            model.to(dev).eval()
        except LabError:
            raise
        except (MemoryError, torch.cuda.OutOfMemoryError) as exc:
            raise ModelOutOfMemoryError(f"out of memory loading {entry.name}.") from exc
        except OSError as exc:
            raise NotAModelError(f"transformers cannot load {source}: {str(exc).splitlines()[0]}") from exc
        except Exception as exc:  # damaged weights, unsupported architecture
            raise CorruptModelError(f"transformers failed to load {source}: {exc.__class__.__name__}: {str(exc)[:200]}") from exc
        cfg = model.config
        text_cfg = getattr(cfg, "text_config", None) or cfg
        info = ModelInfo(
            name=entry.name,
            architecture=str(getattr(cfg, "model_type", "unknown")),
            parameters=int(sum(p.numel() for p in model.parameters())),
            vocab_size=int(model.get_output_embeddings().weight.shape[0]),
            context_length=int(getattr(text_cfg, "max_position_embeddings", 2048) or 2048),
            quantisation=quant,
            backend="transformers",
            device=dev,
            has_chat_template=bool(getattr(tok, "chat_template", None)),
            source=source,
            stamp=stamp,
        )
        return cls(model, tok, info, dev)

    @staticmethod
    def _convert_gguf(path: str, folder: Path) -> None:
        """De-quantise a GGUF through transformers once and keep the result as safetensors."""
        from safetensors.torch import save_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        src_dir, name = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                tok = AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
                model = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=name)
            tok.save_pretrained(tmp)
            model.config.save_pretrained(tmp)
            model.generation_config.save_pretrained(tmp)
            save_model(model, str(tmp / "model.safetensors"))
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    # ---- primitives -----------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        kwargs = {} if parse_special else {"split_special_tokens": True}
        return list(self.tok(text, add_special_tokens=add_special, **kwargs)["input_ids"])

    def _token_bytes(self, token_id: int) -> bytes:
        if token_id in self._special_ids:
            return self.tok.convert_ids_to_tokens(token_id).encode("utf-8")
        piece = self.tok.convert_ids_to_tokens(token_id)
        if piece is None:
            return b""
        if self._byte_level:
            try:
                return bytes(_BYTE_DECODER[c] for c in piece)
            except KeyError:
                return piece.encode("utf-8")
        if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            return bytes([int(piece[3:5], 16)])
        return piece.replace("▁", " ").encode("utf-8")

    @property
    def eos_ids(self) -> frozenset[int]:
        return self._eos

    def _chat_template(self) -> str | None:
        return getattr(self.tok, "chat_template", None)

    def _special_tokens(self) -> dict[str, str]:
        return {"bos_token": self.tok.bos_token or "", "eos_token": self.tok.eos_token or ""}

    def _template_source(self) -> str:
        return "tokenizer_config (transformers)"

    def _is_special(self, token_id: int) -> bool:
        return token_id in self._special_ids

    def _row(self, logits):
        """One logits row as the state keeps it: numpy on the CPU path (as it has always been,
        so seeded CPU streams do not change), a float32 device tensor where sampling is on the device."""
        if self._device_sampling:
            return logits.to(self._torch.float32, copy=True)
        return logits.float().cpu().numpy()

    def _forward(self, new_ids: list[int], past) -> tuple[object, object]:
        torch = self._torch
        extra = {self._keep_kw: 1} if self._keep_kw and self._device_sampling else {}
        try:
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x = torch.tensor([new_ids], device=self.device)
                out = self.model(input_ids=x, use_cache=True, **{self._cache_kw: past}, **extra)
        except (MemoryError, torch.cuda.OutOfMemoryError) as exc:
            self._reset_cache()
            raise ModelOutOfMemoryError("out of memory running the model.") from exc
        self.tokens_evaluated += len(new_ids)
        cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        return self._row(out.logits[0, -1]), cache

    def _static_call(self, fn, *args):
        torch = self._torch
        try:
            return fn(*args)
        except (MemoryError, torch.cuda.OutOfMemoryError) as exc:
            self._reset_cache()
            raise ModelOutOfMemoryError("out of memory running the model.") from exc

    def _reset_cache(self) -> None:
        self._cache, self._cached_ids, self._cached_logits, self._cached_prompt = None, [], None, 0
        self._on_static = False

    @property
    def activity(self) -> str:
        from lab.backends.hf_decode import COMPILING

        decoders = [self._static, *self._batch_decoders.values()]
        return COMPILING if any(d is not None and d.status == COMPILING for d in decoders) else ""

    def _state_logits(self, ids: list[int], prompt_len: int):
        """The canonical way (see `lab.backends.base`): the prompt in one forward pass, each later
        token in a pass of its own on the cached keys and values. A fresh state goes to the static
        decoder once it is ready (and the ids fit it), else to the dynamic cache."""
        keep, ready = self._plan(ids, prompt_len, self._cached_ids, self._cached_prompt, self._cached_logits)
        if ready is not None:
            return ready
        static = self._static
        if keep and keep < len(self._cached_ids):
            if self._on_static:
                self._static_call(static.crop, keep)
            else:
                try:
                    self._cache.crop(keep - len(self._cached_ids))  # negative: remove that many
                except Exception:  # caches that cannot be cropped (sliding windows): start over
                    keep = 0
        if keep == 0:
            self._reset_cache()
            if static is not None and static.ready and len(ids) < static.max_len:
                logits = self._row(self._static_call(static.prompt, ids[:prompt_len])[0])
                self.tokens_evaluated += prompt_len
                self._on_static = True
            else:
                logits, self._cache = self._forward(ids[:prompt_len], None)
            self._cached_prompt = prompt_len
            self._remember_prompt(ids[:prompt_len], logits)
            keep = prompt_len
        if self._on_static and len(ids) >= static.max_len:  # beyond the static cache: start over, dynamic
            self._reset_cache()
            logits, self._cache = self._forward(ids[:prompt_len], None)
            self._cached_prompt, keep = prompt_len, prompt_len
        self._cached_ids, self._cached_logits = ids[:keep], None
        for pos in range(keep, len(ids)):
            if self._on_static:
                logits = self._row(self._static_call(static.step, [ids[pos]])[0])
                self.tokens_evaluated += 1
            else:
                logits, self._cache = self._forward([ids[pos]], self._cache)
            self._cached_ids = ids[:pos + 1]
        self._cached_logits = logits
        return logits

    def _last_logits(self, ids: Sequence[int], prompt_len: int) -> np.ndarray:
        logits = self._state_logits(list(ids), prompt_len)
        return logits if isinstance(logits, np.ndarray) else logits.cpu().numpy()

    def _step_logits(self, ids: list[int], prompt_len: int):
        return self._state_logits(ids, prompt_len) if self._device_sampling else self._last_logits(ids, prompt_len)

    def _pick_rows(self, rows, settings, rngs, top_n):
        if isinstance(rows, np.ndarray):
            return super()._pick_rows(rows, settings, rngs, top_n)
        from lab.sampling import sample_rows_torch

        uniforms = [] if settings.greedy else [rng.random() for rng in rngs]
        out = []
        for r in sample_rows_torch(rows, settings, uniforms, top_n):
            n = (len(r) - 3) // 2
            out.append((int(r[0]), float(r[1]), float(r[2]), list(zip((int(i) for i in r[3:3 + n]), r[3 + n:]))))
        return out

    def _batch_decoder(self, n: int):
        """The static decoder for batches of n (its compile starts on first use), or None where
        single streams have none (CPU by default). At most 3 batch sizes are kept."""
        if self._static is None:
            return None
        dec = self._batch_decoders.get(n)
        if dec is None:
            from lab.backends.hf_decode import StaticDecoder

            idle = [k for k, d in self._batch_decoders.items() if not d.busy]
            if len(self._batch_decoders) >= 3:
                if not idle:
                    return None
                self._batch_decoders.pop(idle[0]).close()
            try:
                dec = StaticDecoder(self.model, *self._static_args, batch=n)
            except Exception:
                return None
            self._batch_decoders[n] = dec
            dec.start_compile()
        return dec

    def _batch_steps(self, prompt: list[int], n: int, max_tokens: int):
        """One forward per token for the n rows: a static cache and the compiled step once ready
        (CUDA), else the dynamic cache, eager. The first rows come from the prompt evaluated as a
        single stream evaluates it (dynamic path) or once per row (static path)."""
        dec = self._batch_decoder(n)
        if dec is not None and dec.ready and not dec.busy and len(prompt) + max_tokens <= dec.max_len:
            dec.busy = True  # another batch of n running meanwhile takes the dynamic path
            try:
                rows = self._static_call(dec.prompt, prompt)
                self.tokens_evaluated += n * len(prompt)
                while True:
                    tokens = yield rows if self._device_sampling else rows.cpu().numpy()
                    rows = self._static_call(dec.step, tokens)
                    self.tokens_evaluated += n
            finally:
                dec.busy = False
        torch = self._torch
        logits, cache = self._forward(prompt, None)  # the prompt once, as a single stream evaluates it
        rows = logits.expand(n, -1) if self._device_sampling else np.repeat(logits[None], n, axis=0)
        cache.batch_repeat_interleave(n)
        extra = {self._keep_kw: 1} if self._keep_kw and self._device_sampling else {}
        while True:
            tokens = yield rows
            try:
                with torch.inference_mode(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    x = torch.tensor([[t] for t in tokens], device=self.device)
                    out = self.model(input_ids=x, use_cache=True, **{self._cache_kw: cache}, **extra)
            except (MemoryError, torch.cuda.OutOfMemoryError) as exc:
                raise ModelOutOfMemoryError(f"out of memory running a batch of {n}.") from exc
            self.tokens_evaluated += n
            cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            last = out.logits[:, -1]
            rows = last.to(torch.float32, copy=True) if self._device_sampling else last.float().cpu().numpy()

    def _position_logits(self, ids: Sequence[int]) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self.model(input_ids=torch.tensor([list(ids)], device=self.device), use_cache=False)
        self.tokens_evaluated += len(ids)
        return out.logits[0].float().cpu().numpy()

    def _layer_logits(self, ids: Sequence[int]) -> list[np.ndarray]:
        torch = self._torch
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self.model(input_ids=torch.tensor([list(ids)], device=self.device), output_hidden_states=True,
                             use_cache=False)
        self.tokens_evaluated += len(ids)
        hidden = out.hidden_states  # embeddings, then one per layer (the last already normed)
        norm = getattr(getattr(self.model, "model", None), "norm", None)
        head = self.model.get_output_embeddings()
        result = []
        with torch.inference_mode():
            for h in hidden[:-1]:
                x = h[0, -1]
                x = norm(x) if norm is not None else x
                result.append(head(x).float().cpu().numpy())
        result.append(out.logits[0, -1].float().cpu().numpy())  # the model's own final prediction
        return result

    def close(self) -> None:
        with self.lock:  # never while a forward pass runs in another thread
            self._reset_cache()
            for dec in [self._static, *self._batch_decoders.values()]:
                if dec is not None:
                    dec.close()
            self._static, self._batch_decoders = None, {}
            self.model = None
        if self.device == "cuda":
            self._torch.cuda.empty_cache()
