"""The lab's own tiny GPT as a catalogue backend (a checkpoint written by `lab.train`).

The checkpoint is read by `lab.train.load_checkpoint` (weights only: a file that would run code
is refused); one that lacks the tiny GPT's fields gets a LabError, not a traceback.
A checkpoint whose vocabulary has the chat tokens (corpus kind "bpe-chat", written by `lab.sft`:
`tiny-chat` and its pretrained base) is a chat model: ChatML template, `<|im_end|>` ends a reply."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lab.backends.base import Backend
from lab.errors import LabError
from lab.paths import weights_stamp
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
        self._chat = corpus.kind == "bpe-chat"
        if self._chat:
            from dataclasses import replace

            from lab.sft import ChatVocab

            self.corpus = ChatVocab(corpus.kind, list(corpus.pieces))
            self.info = replace(info, has_chat_template=True)
        self.capabilities = Capabilities(supports_logprobs=True, supports_hidden_states=False,
                                         supports_chat_template=self._chat, supports_gpu=False,
                                         supports_kv_cache=False)

    @classmethod
    def load(cls, entry: CatalogueEntry) -> "TinyBackend":
        from lab.gpt import GPT, GPTConfig
        from lab.train import Corpus, load_checkpoint

        stamp = weights_stamp(entry.path)  # before reading: a file written meanwhile reads as another model
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
                         source=f"{entry.path} (step {step})", stamp=stamp)
        return cls(model, corpus, info)

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        if self._chat and not parse_special:  # "<|im_end|>" typed as text stays text
            return self.corpus.encode_plain(text)
        return self.corpus.encode(text)

    def _token_bytes(self, token_id: int) -> bytes:
        return self.corpus.pieces[token_id]

    @property
    def eos_ids(self) -> frozenset[int]:
        return frozenset({self.corpus.end_of_turn}) if self._chat else frozenset()

    def _chat_template(self) -> str | None:
        from lab.conversations import CHATML_TEMPLATE

        return CHATML_TEMPLATE if self._chat else None

    def _template_source(self) -> str:
        return "ChatML (the lab's tiny-chat vocabulary)"

    def _is_special(self, token_id: int) -> bool:
        return self._chat and token_id in self.corpus.specials.values()

    def _last_logits(self, ids: Sequence[int], prompt_len: int) -> np.ndarray:
        """The whole window in one pass every time: a function of the ids alone."""
        torch = self._torch
        window = list(ids)[-self.info.context_length:]
        with torch.no_grad():
            logits, _ = self.model(torch.tensor([window], dtype=torch.long))
        self.tokens_evaluated += len(window)
        return logits[0, -1].float().numpy()

    def _batch_steps(self, prompt: list[int], n: int, max_tokens: int):
        """n rows in one forward per token: each row's last window, as `_last_logits` reads it."""
        torch = self._torch
        seqs = [list(prompt) for _ in range(n)]
        rows = np.repeat(self._last_logits(prompt, len(prompt))[None], n, axis=0)
        while True:
            tokens = yield rows
            for seq, token in zip(seqs, tokens):
                seq.append(int(token))
            window = [seq[-self.info.context_length:] for seq in seqs]
            with torch.no_grad():
                logits, _ = self.model(torch.tensor(window, dtype=torch.long))
            self.tokens_evaluated += n * len(window[0])
            rows = logits[:, -1].float().numpy()
