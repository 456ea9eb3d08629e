"""LoRA SFT of a transformers model (Gemma 3 270M by default) on conversations, loss on the assistant only.

    t = LoRATrainer(LoRAConfig(max_iters=100, rank=8))   # loads the model through transformers
    for event in t.run():                                # lab.train's TrainEvent stream
        print(event.line())
    t.save_model("gemma-3-270m-sft")                     # a catalogue model: opens in every screen

- Adapters are `peft`'s LoRA on the attention and MLP projections; the base weights stay frozen.
- The loss needs logits only where the mask is 1 (the assistant's tokens), so the step runs the
  trunk, gathers the hidden states at those positions and projects only them through the output
  layer. Gemma's 262,144-token output layer is most of its parameters and of a full-logits step's
  cost: `masked_loss` vs `full_loss` (every position's logits, what `model(..., labels=...)` and trl's
  SFTTrainer compute) is what `bench/sft.py` measures.
- Why not trl's SFTTrainer: it computes full logits (and from them entropy and token accuracy) at
  every position, runs its own loop (epochs, its own checkpoint folders) and imports `datasets`
  and `accelerate`'s training stack; and transformers' Trainer refuses the GGUF-converted Gemma
  outright ("quantized with GGUF ... do not support training") until its quantizer is stripped.
  Measured (`bench/sft.py --trl`, same run, 2-core CPU, LoRA r8, batch 4): this loop 78 tok/s,
  SFTTrainer 36 tok/s. The lab's loop is ~100 lines on the pieces of `lab.train`: the same
  TrainEvents, atomic checkpoints, NaN detection and stop/pause from another thread as
  pretraining, and the gathered-logits loss; the data, template and mask are `lab.conversations`'.
- A stop (cancel) that arrives mid-step discards that step: the weights stay those of the last full step.
- Only a transformers model can be finetuned: a GGUF through llama.cpp has no gradients (a clear
  LabError says so); the same GGUF loads through transformers, de-quantised.
- The saved model is the base with the adapters merged, written as an HF folder (with Gemma's
  documented chat template, and `<end_of_turn>` as an end of generation) under the lab cache's
  `finetuned/<name>/`, atomically: a failed save (a full disk) leaves any earlier model as it was.
"""

from __future__ import annotations

import copy
import errno
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.catalogue import FINETUNED_DIR, BASE_DEFAULT
from lab.conversations import chat_format, render_conversation, render_prompt
from lab.errors import LabError
from lab.paths import cache_dir
from lab.sft_data import Example, examples_for
from lab.train import RunControl, TrainEvent, _lr, save_atomic


@dataclass
class LoRAConfig:
    model: str = BASE_DEFAULT  # a catalogue name, path or hub id, loaded through transformers
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.0
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    learning_rate: float = 2e-4
    min_lr: float = 2e-5
    warmup_iters: int = 10
    max_iters: int = 200
    lr_decay_iters: int = 200
    batch_size: int = 4  # conversations per step
    max_len: int = 256  # tokens per conversation (longer ones are cut)
    grad_clip: float = 1.0
    eval_interval: int = 50
    eval_iters: int = 4  # held-out batches per validation estimate
    sample_interval: int = 50  # 0 = no samples
    sample_prompts: int = 2
    sample_tokens: int = 48
    conversations: str = ""  # JSONL of OpenAI `messages`; "" = the lab's default set
    style: str = "working"
    data_seed: int = 0
    counts: tuple[int, int, int, int] = (300, 300, 200, 200)  # identity, apples, letters, arithmetic
    held_out: float = 0.1
    seed: int = 0
    device: str = "auto"
    out_dir: str = ""  # adapter checkpoints; "" = the lab cache's lora/
    checkpoint_interval: int = 0


def finetunable(backend) -> None:
    """Raise a LabError unless `backend` holds a torch model with weights that gradients can reach."""
    if getattr(backend.info, "backend", "") != "transformers":
        name, how = backend.info.name, backend.info.backend
        hint = ("Load the same GGUF with the transformers backend (`--backend transformers`), which de-quantises it."
                if how == "llama.cpp" else "The tiny GPT is finetuned by `deepdive-lab sft --model tiny`.")
        raise LabError(f"{name} runs through {how}, which cannot be finetuned here: LoRA needs a transformers "
                       "model (llama.cpp runs quantised weights with no gradients).", hint)


def masked_loss(model, x, targets):
    """Mean cross-entropy over the positions where targets != -100, projecting only those hidden states.

    Right padding needs no attention mask: causal attention never lets a real token see a later pad."""
    import torch.nn.functional as F

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    hidden = base.model(input_ids=x, use_cache=False).last_hidden_state
    keep = targets != -100
    logits = base.get_output_embeddings()(hidden[keep])
    cap = getattr(base.config, "final_logit_softcapping", None)
    if cap:
        logits = (logits / cap).tanh() * cap
    return F.cross_entropy(logits.float(), targets[keep])


def full_loss(model, x, targets):
    """The straightforward loss: logits at every position, then the masked mean (the reference)."""
    import torch.nn.functional as F

    logits = model(input_ids=x, use_cache=False).logits
    return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1))


class LoRATrainer(RunControl):
    def __init__(self, cfg: LoRAConfig, backend=None, loss=masked_loss) -> None:
        import torch
        from peft import LoraConfig, get_peft_model

        from lab import catalogue

        self.cfg = cfg
        self.backend = backend or catalogue.load(cfg.model, backend="transformers", device=cfg.device)
        finetunable(self.backend)
        self.fmt = chat_format(self.backend)
        self.eot = self.fmt.tokenize(self.fmt.end_of_turn)[0]
        train, self.held_out = examples_for(cfg)
        self.train_convs = [self._render(e) for e in train]
        self.val_convs = [self._render(e) for e in self.held_out] or self.train_convs[:cfg.batch_size]
        self.device = self.backend.device
        self.loss_fn = loss
        torch.manual_seed(cfg.seed)
        lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, target_modules=list(cfg.targets),
                          task_type="CAUSAL_LM")
        self.model = get_peft_model(self.backend.model, lora)  # injects the adapters into the backend's model
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.learning_rate, weight_decay=0.0)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.step = 0
        self.out_dir = Path(cfg.out_dir) if cfg.out_dir else cache_dir() / "lora"
        RunControl.__init__(self)

    def _render(self, e: Example) -> tuple[list[int], list[int]]:
        r = render_conversation(self.fmt, e.messages)
        return list(r.ids[:self.cfg.max_len]), list(r.mask[:self.cfg.max_len])

    # ---- data ------------------------------------------------------------------------------
    def batch(self, split: str = "train"):
        """(x, targets): batch_size conversations, right-padded; targets are the next token where the mask is 1."""
        import torch

        convs = self.train_convs if split == "train" else self.val_convs
        pick = torch.randint(len(convs), (self.cfg.batch_size,), generator=self.generator).tolist()
        rows = [convs[i] for i in pick]
        self.batch_tokens = sum(len(ids) - 1 for ids, _ in rows)  # real tokens, padding left out
        width = max(len(ids) for ids, _ in rows)
        x = torch.zeros((len(rows), width - 1), dtype=torch.long)
        y = torch.full((len(rows), width - 1), -100, dtype=torch.long)
        for r, (ids, mask) in enumerate(rows):
            x[r, :len(ids) - 1] = torch.tensor(ids[:-1])
            y[r, :len(ids) - 1] = torch.tensor([t if m else -100 for t, m in zip(ids[1:], mask[1:])])
        return x.to(self.device), y.to(self.device)

    def evaluate(self) -> float:
        import torch

        self.model.eval()
        with torch.no_grad():
            losses = [float(self.loss_fn(self.model, *self.batch("val"))) for _ in range(self.cfg.eval_iters)]
        self.model.train()
        return sum(losses) / len(losses)

    def sample(self, seed: int = 0) -> str:
        """Answers to the first held-out prompts, sampled (seeded) until <end_of_turn>."""
        from lab.sampling import SamplingSettings

        self.model.eval()
        self.backend._reset_cache()  # the weights moved since its cache was filled
        lines = []
        for k, e in enumerate(self.held_out[:self.cfg.sample_prompts]):
            ids = render_prompt(self.fmt, e.prompt)
            out = []
            for ev in self.backend.stream(ids, SamplingSettings(seed=seed + k), self.cfg.sample_tokens):
                if ev.id == self.eot:
                    break
                out.append(ev.id)
            lines.append(f"Q: {e.question}\nA: {self.backend.detokenize(out)}")
        self.backend._reset_cache()
        self.model.train()
        return "\n".join(lines)

    # ---- checkpoints -----------------------------------------------------------------------
    def checkpoint_path(self) -> Path:
        return self.out_dir / "lora-ckpt.pt"

    def save(self, path: Path | None = None) -> Path:
        """The adapters and optimizer state (atomic, weights only); resume with `resume_from`."""
        from peft import get_peft_model_state_dict

        path = path or self.checkpoint_path()
        cfg = asdict(self.cfg)
        save_atomic({"adapter": get_peft_model_state_dict(self.model), "optimizer": self.optimizer.state_dict(),
                     "config": cfg, "step": self.step, "generator": self.generator.get_state()}, path)
        return path

    @classmethod
    def resume_from(cls, path: str | Path, backend=None) -> "LoRATrainer":
        from peft import set_peft_model_state_dict

        from lab.train import load_checkpoint

        ckpt = load_checkpoint(path)
        raw = dict(ckpt["config"])
        raw["targets"], raw["counts"] = tuple(raw["targets"]), tuple(raw["counts"])
        t = cls(LoRAConfig(**raw), backend)
        set_peft_model_state_dict(t.model, ckpt["adapter"])
        t.optimizer.load_state_dict(ckpt["optimizer"])
        t.step = int(ckpt["step"])
        t.generator.set_state(ckpt["generator"])
        return t

    def save_model(self, name: str = "gemma-3-270m-sft", folder: Path | None = None) -> Path:
        """The base with the adapters merged, as an HF folder the catalogue opens by `name`.

        Written beside the target and renamed over it: a failure (a full disk) leaves any earlier model."""
        if not name or any(c in name for c in "/\\") or name.startswith("."):
            raise LabError(f"{name!r} is not a usable model name (letters, digits, - and _ only).")
        dest = Path(folder) if folder else cache_dir() / FINETUNED_DIR / name
        tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
        old = dest.with_name(dest.name + f".old{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            from safetensors.torch import save_model

            merged = copy.deepcopy(self.model).merge_and_unload()
            merged.generation_config.eos_token_id = sorted(set(self.backend.eos_ids) | {self.eot})
            tmp.mkdir(parents=True)
            # as lab.backends.hf caches a converted GGUF: transformers refuses save_pretrained on one
            save_model(merged, str(tmp / "model.safetensors"))
            merged.config.save_pretrained(tmp)
            merged.generation_config.save_pretrained(tmp)
            tok = copy.copy(self.backend.tok)
            tok.chat_template = self.fmt.template
            tok.save_pretrained(tmp)
            if dest.exists():
                os.replace(dest, old)
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if old.exists() and not dest.exists():
                os.replace(old, dest)
            if exc.errno == errno.ENOSPC:
                raise LabError(f"the disk is full: {name} could not be saved, and nothing was replaced.",
                               "Free some space and save again; the trained adapters are still in memory.") from None
            raise LabError(f"{name} could not be saved to {dest.parent}: {exc.strerror or exc}.") from None
        return dest

    # ---- the loop --------------------------------------------------------------------------
    def run(self):
        """Train until max_iters or stop(); yields a TrainEvent per step (and at evaluations)."""
        import torch

        cfg = self.cfg
        t_start = time.perf_counter()
        recent: list[tuple[float, int]] = []
        first: list[float] = []
        self.model.train()
        while True:
            self.wait_if_paused()
            if self._stop.is_set():
                yield self._stopped("stopped", t_start)
                return
            step = self.step
            val = self.evaluate() if cfg.eval_interval and (step % cfg.eval_interval == 0 or step == cfg.max_iters) else None
            text = self.sample(seed=step) if cfg.sample_interval and (
                step % cfg.sample_interval == 0 or step == cfg.max_iters) else None
            if step >= cfg.max_iters:
                path = self.save()
                yield TrainEvent(step, cfg.max_iters, val_loss=val, device=self.device, sample=text, stopped="done",
                                 checkpoint=str(path), elapsed=time.perf_counter() - t_start)
                return
            lr = _lr(cfg, step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            x, y = self.batch("train")
            loss = self.loss_fn(self.model, x, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self._stop.is_set():  # cancelled mid-step: drop this step's gradients, keep the last step's weights
                self.optimizer.zero_grad(set_to_none=True)
                yield self._stopped("stopped", t_start)
                return
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
            self.optimizer.step()
            value = float(loss.detach())
            recent = (recent + [(time.perf_counter() - t0, self.batch_tokens)])[-20:]
            tps = sum(n for _, n in recent) / sum(dt for dt, _ in recent)
            self.step = step + 1
            first = (first + [value])[:10]
            reason = ""
            if not math.isfinite(value):
                reason = "nan: the loss is not a finite number (NaN or inf)"
            elif len(first) == 10 and value > 3 * max(first):
                reason = f"exploding loss: {value:.3g} is over 3x the first steps' {max(first):.3g}"
            checkpoint = str(self.save()) if not reason and cfg.checkpoint_interval and \
                self.step % cfg.checkpoint_interval == 0 else ""
            eta = (cfg.max_iters - self.step) * sum(dt for dt, _ in recent) / len(recent)
            yield TrainEvent(step, cfg.max_iters, value, val, None, tps, None, lr, time.perf_counter() - t_start, eta,
                             self.device, text, reason, checkpoint)
            if reason:
                return

    def _stopped(self, why: str, t_start: float) -> TrainEvent:
        path = self.save()
        return TrainEvent(self.step, self.cfg.max_iters, device=self.device, stopped=why, checkpoint=str(path),
                          elapsed=time.perf_counter() - t_start)
