"""The lab's own tiny GPT as a catalogue backend (a checkpoint written by `lab.train`).

The checkpoint is read by `lab.train.load_checkpoint` (weights only: a file that would run code
is refused); one that lacks the tiny GPT's fields gets a LabError, not a traceback."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lab.backends.base import Backend
from lab.errors import LabError
from lab.types import Capabilities, CatalogueEntry, ModelInfo


class TinyBackend(Backend):
    sliding_window = True  # the tiny GPT reads the last block_size tokens, like nanoGPT's generate
    def __init__(self, model, corpus, info: ModelInfo) -> None:
        super().__init__()
        import torch

        self._torch = torch
        self.model = model
        self.corpus = corpus
        self.info = info
        self.capabilities = Capabilities(supports_logprobs=True, supports_hidden_states=False,
                                         supports_chat_template=False, supports_gpu=False, supports_kv_cache=False)

    @classmethod
    def load(cls, entry: CatalogueEntry) -> "TinyBackend":
        from lab.gpt import GPT, GPTConfig
        from lab.train import Corpus, load_checkpoint

        ckpt = load_checkpoint(entry.path)
        try:
            cfg = GPTConfig(**ckpt["model_config"])
            model = GPT(cfg)
            model.load_state_dict(ckpt["model"])
            corpus = Corpus(ckpt["corpus_kind"], list(ckpt["pieces"]))
            step = int(ckpt["step"])
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise LabError(f"{Path(entry.path).name} is not a deepdive-lab tiny-GPT checkpoint ({exc}).") from exc
        model.eval()
        info = ModelInfo(name=entry.name, architecture="tiny-gpt", parameters=model.n_params(),
                         vocab_size=cfg.vocab_size, context_length=cfg.block_size, quantisation="float32",
                         backend="torch (tiny)", device="cpu", has_chat_template=False,
                         source=f"{entry.path} (step {step})")
        return cls(model, corpus, info)

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        return self.corpus.encode(text)

    def _token_bytes(self, token_id: int) -> bytes:
        return self.corpus.pieces[token_id]

    @property
    def eos_ids(self) -> frozenset[int]:
        return frozenset()

    def _last_logits(self, ids: Sequence[int], prompt_len: int) -> np.ndarray:
        """The whole window in one pass every time: a function of the ids alone."""
        torch = self._torch
        window = list(ids)[-self.info.context_length:]
        with torch.no_grad():
            logits, _ = self.model(torch.tensor([window], dtype=torch.long))
        self.tokens_evaluated += len(window)
        return logits[0, -1].float().numpy()
