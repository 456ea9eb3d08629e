"""Check a GGUF file before a backend touches it, and read its metadata.

llama.cpp and transformers give poor messages (or worse) on a damaged file, so the
engine first checks: the magic bytes (is it a GGUF at all?), a header the `gguf`
reader can parse, and a file long enough to hold every tensor it declares.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from lab.errors import CorruptModelError, ModelNotFoundError, NotAModelError

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class GGUFSummary:
    path: str
    size_bytes: int
    architecture: str
    name: str
    context_length: int
    vocab_size: int
    parameters: int
    file_type: str  # quantisation, e.g. "Q4_K_M"
    has_chat_template: bool


# llama.cpp's general.file_type values (llama_ftype) to names.
_FTYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL",
    26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16",
}


_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class _Cursor:
    """Reads GGUF values from a memory map; raises EOFError past the end."""

    def __init__(self, buf) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise EOFError
        value = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += size
        return value

    def string(self) -> bytes:
        n = self.unpack("<Q")
        if self.pos + n > len(self.buf):
            raise EOFError
        value = self.buf[self.pos:self.pos + n]
        self.pos += n
        return value

    def value(self, vtype: int, keep: bool = False):
        """A value; an array of strings or numbers is skipped and returned as its length
        unless `keep`, when its strings are returned as a list."""
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype])
        if vtype == _STRING:
            return self.string().decode("utf-8", "replace")
        if vtype == _ARRAY:
            itype, n = self.unpack("<I"), self.unpack("<Q")
            if itype == _STRING and keep:
                if n > len(self.buf) // 8:
                    raise EOFError
                return [self.string().decode("utf-8", "replace") for _ in range(n)]
            if itype == _STRING:  # skip fast: only the count is kept
                end = len(self.buf)
                for _ in range(n):
                    if self.pos + 8 > end:
                        raise EOFError
                    self.pos += 8 + struct.unpack_from("<Q", self.buf, self.pos)[0]
                if self.pos > end:
                    raise EOFError
                return n
            if itype in _SCALAR:
                self.pos += n * struct.calcsize(_SCALAR[itype])
                if self.pos > len(self.buf):
                    raise EOFError
                return n
            if n > len(self.buf):
                raise EOFError
            return [self.value(itype) for _ in range(n)]
        raise ValueError(f"unknown GGUF value type {vtype}")


def read_header(path: str | os.PathLike) -> tuple[dict, list[tuple[str, int, int, int]], int]:
    """Parse a GGUF header: (metadata, tensors as (name, ggml type, n elements, offset), data start).

    Arrays are returned as their length (e.g. tokenizer.ggml.tokens -> vocabulary size).
    """
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        c = _Cursor(mm)
        if mm[:4] != GGUF_MAGIC:
            raise ValueError("bad magic")
        c.pos = 4
        version = c.unpack("<I")
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old")
        n_tensors, n_kv = c.unpack("<Q"), c.unpack("<Q")
        meta: dict = {}
        for _ in range(n_kv):
            key = c.string().decode("utf-8", "replace")
            meta[key] = c.value(c.unpack("<I"))
        tensors = []
        for _ in range(n_tensors):
            name = c.string().decode("utf-8", "replace")
            n_dims = c.unpack("<I")
            n_el = 1
            for _ in range(n_dims):
                n_el *= c.unpack("<Q")
            ttype, offset = c.unpack("<I"), c.unpack("<Q")
            tensors.append((name, ttype, n_el, offset))
        align = int(meta.get("general.alignment", 32))
        data_start = (c.pos + align - 1) // align * align
        return meta, tensors, data_start


def read_tokenizer(path: str | os.PathLike) -> dict:
    """The tokenizer metadata of a GGUF file: `tokenizer.ggml.model` and `.pre` (strings), and
    `tokenizer.ggml.tokens` and `.merges` as lists of strings (merges only where the file has
    them: byte-level BPE vocabularies do, SentencePiece ones do not)."""
    keys = frozenset({"tokenizer.ggml.tokens", "tokenizer.ggml.merges"})
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        c = _Cursor(mm)
        if mm[:4] != GGUF_MAGIC:
            raise ValueError("bad magic")
        c.pos = 8
        c.unpack("<Q")  # the tensor count
        n_kv = c.unpack("<Q")
        meta: dict = {}
        for _ in range(n_kv):
            key = c.string().decode("utf-8", "replace")
            value = c.value(c.unpack("<I"), keep=key in keys)
            if key.startswith("tokenizer.ggml."):
                meta[key] = value
        return meta


def inspect_gguf(path: str | os.PathLike) -> GGUFSummary:
    """Validate a GGUF file and summarise it. Raises a typed `LabError` when it is not usable."""
    p = Path(path)
    if not p.exists():
        raise ModelNotFoundError(f"no file at {p}.")
    if p.is_dir():
        raise NotAModelError(f"{p} is a folder, not a GGUF file.")
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(4)
    if head != GGUF_MAGIC:
        raise NotAModelError(f"{p.name} is not a GGUF model (it does not start with the GGUF magic bytes).")
    try:
        meta, tensors, data_start = read_header(p)
    except (EOFError, ValueError, OverflowError, MemoryError, struct.error) as exc:
        raise CorruptModelError(f"{p.name} is a damaged GGUF file: its header cannot be read ({str(exc) or 'the file ends too early'}).") from exc
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    end = data_start
    params = 0
    for _name, ttype, n_el, offset in tensors:
        params += n_el
        try:
            block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
        except (ValueError, KeyError):
            continue
        end = max(end, data_start + offset + n_el // block * type_size)
    if end > size:
        raise CorruptModelError(f"{p.name} is truncated: it holds {size:,} bytes but its tensors need {end:,}.")
    arch = str(meta.get("general.architecture", "unknown"))
    ctx = meta.get(f"{arch}.context_length")
    ftype = meta.get("general.file_type")
    return GGUFSummary(
        path=str(p),
        size_bytes=size,
        architecture=arch,
        name=str(meta.get("general.name") or p.stem),
        context_length=int(ctx) if ctx is not None else 0,
        vocab_size=int(meta.get("tokenizer.ggml.tokens", 0)),
        parameters=params,
        file_type=_FTYPES.get(int(ftype), f"type {ftype}") if ftype is not None else "unknown",
        has_chat_template="tokenizer.chat_template" in meta,
    )
