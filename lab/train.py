"""Pretrain a tiny GPT: data, a training loop that yields events, checkpoints.

    trainer = Trainer(PRESETS["cpu"])
    for event in trainer.run():       # step, losses, tokens/s, MFU, ETA, samples, or why it stopped
        print(event.line())

Headless (no UI). `stop()` and `pause()`/`resume()` may be called from another thread; the
loop checks them between steps. Checkpoints are written to a temporary file and renamed, so
a crash mid-write leaves the previous checkpoint intact; a new run keeps an earlier run's
`ckpt.pt` under a dated name (`keep_previous`); checkpoints hold only tensors and plain values
and load with `weights_only=True` (`load_checkpoint` refuses a pickle that would run code).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from lab.errors import LabError
from lab.paths import cache_dir, default_corpus


@dataclass
class TrainConfig:
    data: str = ""  # a text file; "" = the shipped Tiny Shakespeare corpus
    tokenizer: str = "char"  # "char" or "bpe" (the lab's own byte-level BPE)
    bpe_vocab: int = 512  # vocabulary size when tokenizer == "bpe"
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64  # context length
    dropout: float = 0.0
    batch_size: int = 12
    max_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4  # cosine decay ends here
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0 = off
    eval_interval: int = 250  # steps between validation runs
    eval_iters: int = 20  # batches per validation estimate
    sample_interval: int = 250  # steps between text samples (0 = none)
    sample_tokens: int = 160
    val_fraction: float = 0.1
    device: str = "auto"
    seed: int = 1337
    out_dir: str = ""  # checkpoints; "" = the lab cache's tiny/ folder
    checkpoint_interval: int = 0  # steps between checkpoints (0: only at the end or on stop)
    compile: bool = False  # torch.compile the model on CUDA (slower start, faster steps)
    micro_batch: int = 0  # sequences per forward pass on each process (0: all of its share); gradients accumulate
    cpu_bf16: bool = False  # on a CPU that computes bf16 natively (AVX512-BF16, AMX): bf16 autocast (CUDA: always)


PRESETS: dict[str, TrainConfig] = {
    # nanoGPT's CPU Shakespeare configuration from its README (char level, 4 layers, 4 heads, 128 wide, context
    # 64, batch 12, 2,000 iterations, dropout 0, decay over 2,000) with a peak learning rate of 2e-3 instead of
    # 1e-3: at this size it reaches a lower validation loss in the same steps (1.80 vs 1.90 measured here).
    # bf16 autocast where the CPU has native bf16 matmuls: 1.3x the steps/s of fp32 on an AVX512-BF16 Xeon, the
    # same loss curve within noise (bench/train_vs_nanogpt.py compares both); a CPU without it trains in fp32.
    "cpu": TrainConfig(learning_rate=2e-3, cpu_bf16=True),
    # A minute-long demo on a CPU: smaller and shorter.
    "cpu-quick": TrainConfig(n_layer=2, n_head=2, n_embd=64, block_size=32, batch_size=16, max_iters=400,
                             lr_decay_iters=400, warmup_iters=20, eval_interval=50, sample_interval=50),
    # GPU presets.
    "gpu-small": TrainConfig(n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=64, dropout=0.2,
                             max_iters=5000, lr_decay_iters=5000, eval_interval=500, sample_interval=500),
    # GPT-2 small's shape (12 layers, 12 heads, 768 wide, context 1024), character level. Batch 128 x 1024
    # tokens peaks at 43 GiB of GPU memory (measured on an H200): lower --batch on smaller cards.
    "gpu-gpt2": TrainConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024, batch_size=128, max_iters=2000,
                            lr_decay_iters=2000, learning_rate=6e-4, min_lr=6e-5, beta2=0.95, eval_interval=500,
                            sample_interval=500, compile=True),
}

# Dense bf16 peak FLOP/s of known accelerators, for MFU.
PEAK_FLOPS = {"H100": 989.5e12, "H200": 989.5e12, "A100": 312e12, "L4": 121e12, "A10": 125e12, "4090": 165e12}


@dataclass(frozen=True)
class TrainEvent:
    step: int
    max_iters: int
    train_loss: float | None = None  # this step's training loss
    val_loss: float | None = None  # set on evaluation steps
    eval_train_loss: float | None = None  # averaged over eval_iters batches, on evaluation steps
    tokens_per_sec: float = 0.0
    mfu: float | None = None  # model FLOPs utilisation (None where the peak is unknown, e.g. CPUs)
    lr: float = 0.0
    elapsed: float = 0.0
    eta: float = 0.0
    device: str = "cpu"
    sample: str | None = None
    stopped: str = ""  # why training ended: "done", "stopped", "nan", "exploding loss"
    checkpoint: str = ""  # path written at this step, if any
    world_size: int = 1  # processes training together (tokens/s and MFU are then the whole run's)

    def line(self) -> str:
        parts = [f"step {self.step}/{self.max_iters}"]
        if self.train_loss is not None:
            parts.append(f"loss {self.train_loss:.4f}")
        if self.val_loss is not None:
            parts.append(f"val {self.val_loss:.4f} (train {self.eval_train_loss:.4f})")
        world = f" global, {self.world_size} processes" if self.world_size > 1 else ""
        parts += [f"lr {self.lr:.2e}", f"{self.tokens_per_sec:,.0f} tok/s{world}",
                  f"mfu {self.mfu * 100:.1f}%" if self.mfu is not None else "mfu n/a",
                  f"elapsed {self.elapsed:.1f}s", f"eta {self.eta:.0f}s", self.device]
        out = " · ".join(parts)
        if self.sample is not None:
            out += "\n--- sample ---\n" + self.sample + "\n--------------"
        if self.checkpoint:
            out += f"\ncheckpoint {self.checkpoint}"
        if self.stopped:
            out += f"\nstopped: {self.stopped}"
        return out


@dataclass
class Corpus:
    """Token ids of a text with its vocabulary (pieces as bytes)."""

    kind: str
    pieces: list[bytes]  # id -> bytes
    ids: list[int] = field(repr=False, default_factory=list)

    @classmethod
    def load(cls, cfg: TrainConfig) -> "Corpus":
        path = Path(cfg.data) if cfg.data else default_corpus()
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise LabError(f"cannot read the training text {path}: {exc.strerror or exc}.") from exc
        if len(raw) < 10 * (cfg.block_size + 1):
            raise LabError(f"{path.name} is too short to train on ({len(raw)} bytes).")
        if cfg.tokenizer == "char":
            text = raw.decode("utf-8", errors="replace")
            chars = sorted(set(text))
            index = {c: i for i, c in enumerate(chars)}
            return cls("char", [c.encode("utf-8") for c in chars], [index[c] for c in text])
        if cfg.tokenizer == "bpe":
            from lab.bpe import train_bpe

            merges, pieces, ids = train_bpe(raw, cfg.bpe_vocab, return_ids=True)
            return cls("bpe", [pieces[i] for i in range(256 + len(merges))], ids)
        raise LabError(f"unknown tokenizer {cfg.tokenizer!r}; use char or bpe.")

    def encode(self, text: str) -> list[int]:
        if self.kind == "char":
            index = self._lookup()
            missing = sorted({c for c in text if c not in index})
            if missing:
                raise LabError(f"the tiny model never saw {''.join(missing)[:20]!r} in its training text.")
            return [index[c] for c in text]
        from lab.bpe import encode_with_merges

        return encode_with_merges(text.encode("utf-8"), self._lookup())

    def _lookup(self):
        """Built once: char -> id, or the BPE merges recovered from the pieces."""
        cached = self.__dict__.get("_cached_lookup")
        if cached is not None:
            return cached
        if self.kind == "char":
            cached = {p.decode("utf-8"): i for i, p in enumerate(self.pieces)}
        else:
            from lab.bpe import Merge

            by_piece: dict[bytes, int] = {}
            cached = []
            for i, piece in enumerate(self.pieces):
                if i >= 256:  # each merge: the split of its piece into two earlier ids
                    pair = next(((by_piece[piece[:c]], by_piece[piece[c:]]) for c in range(1, len(piece))
                                 if piece[:c] in by_piece and piece[c:] in by_piece), None)
                    if pair is None:
                        raise LabError("the BPE vocabulary is inconsistent.")
                    cached.append(Merge(pair, i, 0, piece))
                by_piece.setdefault(piece, i)
        self.__dict__["_cached_lookup"] = cached
        return cached

    def decode(self, ids: list[int]) -> str:
        return b"".join(self.pieces[i] for i in ids).decode("utf-8", errors="replace")


def _lr(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay to min_lr at lr_decay_iters."""
    if step < cfg.warmup_iters:
        return cfg.learning_rate * (step + 1) / (cfg.warmup_iters + 1)
    if step > cfg.lr_decay_iters:
        return cfg.min_lr
    ratio = (step - cfg.warmup_iters) / max(1, cfg.lr_decay_iters - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.learning_rate - cfg.min_lr)


def cpu_has_native_bf16() -> bool:
    """True where the CPU multiplies bf16 in hardware (x86 AVX512-BF16 or AMX-BF16, from /proc/cpuinfo)
    and torch's kernels use it (not held to AVX2 by ATEN_CPU_CAPABILITY or ONEDNN_MAX_CPU_ISA).

    Elsewhere (AVX2-only x86, other systems) bf16 autocast is emulated: on this project's machine with
    its kernels held to AVX2, a `cpu` preset step took ~14x as long in bf16 as in fp32."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    if "avx512_bf16" not in flags and "amx_bf16" not in flags:
        return False
    import torch

    try:
        return (torch.backends.cpu.get_cpu_capability().startswith("AVX512")
                and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()))
    except (AttributeError, RuntimeError):  # a torch without these probes: trust the CPU flags
        return True


def save_atomic(obj, path: Path) -> None:
    """torch.save to a temporary file, then rename: a crash mid-write keeps the old file."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class RunControl:
    """Stop and pause from another thread, for a loop that calls `wait_if_paused()` between its steps
    and reads `_stop` (the trainers of pretraining, SFT, LoRA and RL)."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._parked = threading.Event()  # set while the loop waits at a pause, between two steps

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_parked(self, timeout: float | None = None) -> bool:
        """After pause(): wait until the step in flight has finished and the loop is waiting."""
        return self._parked.wait(timeout)

    def wait_if_paused(self) -> None:
        """In the loop, between two steps: hold here while paused."""
        if not self._running.is_set():
            self._parked.set()
            self._running.wait()
            self._parked.clear()


class Trainer(RunControl):
    def __init__(self, cfg: TrainConfig, corpus: Corpus | None = None) -> None:
        import torch

        from lab.devices import pick_torch_device
        from lab.distributed import World, split_batch
        from lab.gpt import GPT, GPTConfig

        self.cfg = cfg
        self.world = World.from_env()  # rank 0 of 1 unless torchrun started this process
        share = split_batch(cfg.batch_size, self.world.size, cfg.micro_batch)
        self.accumulate = share // (cfg.micro_batch or share)  # micro-batches per step on this process
        self.corpus = corpus or Corpus.load(cfg)
        self.device = pick_torch_device(cfg.device)
        if self.world.distributed:
            self.world.init(self.device)
        torch.manual_seed(cfg.seed)
        data = torch.tensor(self.corpus.ids, dtype=torch.long)
        n_val = max(cfg.block_size + 2, int(len(data) * cfg.val_fraction))
        self.train_data, self.val_data = data[:-n_val], data[-n_val:]
        self.model_cfg = GPTConfig(vocab_size=len(self.corpus.pieces), block_size=cfg.block_size, n_layer=cfg.n_layer,
                                   n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout)
        self.model = GPT(self.model_cfg).to(self.device)
        self.compiled = self.model
        if cfg.compile and self.device == "cuda":
            self.compiled = torch.compile(self.model)
        if self.world.distributed:  # the same initial weights on every rank (same seed); gradients averaged
            from torch.nn.parallel import DistributedDataParallel

            self.compiled = DistributedDataParallel(self.compiled)  # (the model has no buffers to broadcast)
            torch.manual_seed(cfg.seed + self.world.rank)  # each rank its own dropout masks
        self._agreed_stop = False  # distributed: a stop asked on any rank, as the last step's all-reduce saw it
        decay = [p for p in self.model.parameters() if p.dim() >= 2]
        no_decay = [p for p in self.model.parameters() if p.dim() < 2]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                            {"params": no_decay, "weight_decay": 0.0}],
                                           lr=cfg.learning_rate, betas=(0.9, cfg.beta2),
                                           fused=self.device == "cuda")
        self.step = 0
        self.generator = torch.Generator().manual_seed(cfg.seed)
        RunControl.__init__(self)
        self.out_dir = Path(cfg.out_dir) if cfg.out_dir else cache_dir() / "tiny"
        self._written: set[Path] = set()  # checkpoints this trainer wrote (or resumed from): replaced in place
        self.kept_previous: Path | None = None  # where an earlier run's checkpoint was kept, if any
        self.autocast = None
        if self.device == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        if self.device == "cuda" and torch.cuda.is_bf16_supported():
            self.autocast = torch.bfloat16
        elif self.device == "cpu" and cfg.cpu_bf16 and cpu_has_native_bf16():
            self.autocast = torch.bfloat16
        self.peak_flops = None
        if self.device == "cuda":
            name = torch.cuda.get_device_name(0)
            self.peak_flops = next((v for k, v in PEAK_FLOPS.items() if k in name), None)

    # ---- data --------------------------------------------------------------------------
    def batch(self, split: str):
        import torch

        data = self.train_data if split == "train" else self.val_data
        ix = torch.randint(len(data) - self.cfg.block_size - 1, (self.cfg.batch_size,), generator=self.generator)
        offsets = ix[:, None] + torch.arange(self.cfg.block_size + 1)
        chunk = data[offsets]
        x, y = chunk[:, :-1], chunk[:, 1:]
        if self.device == "cuda":
            return x.pin_memory().to("cuda", non_blocking=True), y.pin_memory().to("cuda", non_blocking=True)
        return x.to(self.device), y.to(self.device)

    def _forward(self, x, y):
        import torch

        model = self.compiled if self.model.training else self.model
        if self.autocast is not None:
            with torch.autocast(self.device, dtype=self.autocast):
                return model(x, y)
        return model(x, y)

    def evaluate(self) -> tuple[float, float]:
        """(train, val) loss, each the mean over eval_iters batches."""
        import torch

        out = []
        self.model.eval()
        with torch.no_grad():
            for split in ("train", "val"):
                losses = [float(self._forward(*self._shard(*self.batch(split)))[1]) for _ in range(self.cfg.eval_iters)]
                out.append(sum(losses) / len(losses))
        self.model.train()
        if self.world.distributed:  # each rank measured its rows of the same batches
            out = self.world.all_mean(out, self.device)  # (NCCL reduces tensors on the GPU only)
        return out[0], out[1]

    def _shard(self, x, y):
        """This process's rows of a global batch (all of them in a run of one process)."""
        if not self.world.distributed:
            return x, y
        lo, hi = self.world.shard(len(x))
        return x[lo:hi], y[lo:hi]

    def _train_step(self, x, y):
        """One optimizer step on this process's rows of the global batch (x, y), in `accumulate`
        micro-batches; returns the batch's mean loss as a tensor (the loop reads it after queueing the
        next batch). In a distributed run DDP averages the gradients, and the loss returned is a float,
        the mean over every rank, with `_agreed_stop` set when any rank was asked to stop."""
        import contextlib

        import torch

        x, y = self._shard(x, y)
        n = self.accumulate
        micro = len(x) // n
        total = None
        for i in range(n):
            # DDP averages gradients in the last micro-batch's backward only
            last = i == n - 1
            sync = self.compiled.no_sync() if self.world.distributed and not last else contextlib.nullcontext()
            with sync:
                _, loss = self._forward(x[i * micro:(i + 1) * micro], y[i * micro:(i + 1) * micro])
                if i == 0:
                    self.optimizer.zero_grad(set_to_none=True)
                (loss if n == 1 else loss / n).backward()
            total = loss.detach() if total is None else total + loss.detach()
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        mean = total if n == 1 else total / n
        if not self.world.distributed:
            return mean
        mean, stops = self.world.all_mean([mean, float(self._stop.is_set())], self.device)
        self._agreed_stop = stops > 0
        return mean

    def sample(self, tokens: int | None = None, seed: int = 0) -> str:
        import torch

        self.model.eval()
        start = self.corpus.encode("\n") if self.corpus.kind == "char" and b"\n" in self.corpus.pieces else [0]
        g = torch.Generator(device=self.device).manual_seed(seed)
        idx = torch.tensor([start], dtype=torch.long, device=self.device)
        out = self.model.generate(idx, tokens or self.cfg.sample_tokens, generator=g)
        self.model.train()
        return self.corpus.decode(out[0, len(start):].tolist())

    # ---- checkpoints -------------------------------------------------------------------
    def checkpoint_path(self) -> Path:
        """The latest checkpoint: `ckpt.pt` in out_dir (what the catalogue opens as `tiny`)."""
        return self.out_dir / "ckpt.pt"

    def save(self, path: Path | None = None) -> Path:
        """Write a checkpoint of tensors and plain values only (it loads with `weights_only=True`).

        A run's first save keeps a checkpoint it did not write (an earlier run's) under a dated
        name beside it (`keep_previous`), so a new run never silently replaces a trained model."""
        path = path or self.checkpoint_path()
        if not self.world.main:  # the other ranks hold the same weights: rank 0 alone writes
            return path
        if path.resolve() not in self._written:
            self.kept_previous = keep_previous(path) or self.kept_previous
        save_atomic({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                     "model_config": self.model_cfg.to_dict(), "train_config": asdict(self.cfg),
                     "step": self.step, "corpus_kind": self.corpus.kind, "pieces": list(self.corpus.pieces),
                     "generator": self.generator.get_state()}, path)
        self._written.add(path.resolve())
        return path

    @classmethod
    def resume_from(cls, path: str | Path, **overrides) -> "Trainer":
        """A trainer that continues from a checkpoint (optionally with a longer max_iters, say)."""
        ckpt = load_checkpoint(path)
        missing = {"train_config", "pieces", "model", "optimizer", "step", "generator"} - set(ckpt)
        if missing:
            raise LabError(f"{Path(path).name} cannot be resumed: it has no {', '.join(sorted(missing))} "
                           "(it was not written by `deepdive-lab train`).")
        names = {f.name for f in fields(TrainConfig)}
        cfg = replace(TrainConfig(**{k: v for k, v in ckpt["train_config"].items() if k in names}), **overrides)
        corpus = Corpus.load(cfg)
        if corpus.pieces != list(ckpt["pieces"]):
            raise LabError("the training text no longer matches the checkpoint's vocabulary; "
                           "resume with the same data file.")
        t = cls(cfg, corpus)
        try:
            t.model.load_state_dict(ckpt["model"])
            t.optimizer.load_state_dict(ckpt["optimizer"])
            t.generator.set_state(ckpt["generator"])
        except (RuntimeError, ValueError, TypeError) as exc:
            raise LabError(f"{Path(path).name} does not fit the model it describes ({exc}).") from exc
        t.step = int(ckpt["step"])
        t._written.add(Path(path).resolve())  # continuing that file: later saves may replace it
        return t

    # ---- the loop ------------------------------------------------------------------------
    def run(self):
        """Train until max_iters or stop(); yields a TrainEvent per step."""
        cfg = self.cfg
        tokens_per_step = cfg.batch_size * cfg.block_size
        flops_per_token = self.model.flops_per_token()
        t_start = time.perf_counter()
        recent: list[float] = []
        first_losses: list[float] = []
        prefetched = None
        self.model.train()
        while True:
            self.wait_if_paused()
            if self._agreed_stop if self.world.distributed else self._stop.is_set():
                path = self.save()
                yield TrainEvent(self.step, cfg.max_iters, device=self.device, stopped="stopped",
                                 checkpoint=str(path), elapsed=time.perf_counter() - t_start,
                                 world_size=self.world.size)
                return
            step = self.step
            evaluate = step % cfg.eval_interval == 0 or step == cfg.max_iters
            sample = cfg.sample_interval and (step % cfg.sample_interval == 0 or step == cfg.max_iters)
            ev_train = ev_val = None
            if evaluate:
                ev_train, ev_val = self.evaluate()
            text = self.sample(seed=step) if sample and self.world.main else None
            if step >= cfg.max_iters:
                path = self.save()
                yield TrainEvent(step, cfg.max_iters, val_loss=ev_val, eval_train_loss=ev_train, device=self.device,
                                 sample=text, stopped="done", checkpoint=str(path),
                                 elapsed=time.perf_counter() - t_start, world_size=self.world.size)
                return
            lr = _lr(cfg, step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            t0 = time.perf_counter()
            x, y = prefetched if prefetched is not None else self.batch("train")
            prefetched = None
            loss = self._train_step(x, y)
            if self.device == "cuda":  # gather the next batch on the CPU while the GPU finishes this step
                prefetched = self.batch("train")
            value = float(loss)
            dt = time.perf_counter() - t0
            recent = (recent + [dt])[-20:]
            tps = tokens_per_step * len(recent) / sum(recent)
            mfu = flops_per_token * tps / (self.peak_flops * self.world.size) if self.peak_flops else None
            elapsed = time.perf_counter() - t_start
            eta = (cfg.max_iters - step - 1) * sum(recent) / len(recent)
            self.step = step + 1
            if len(first_losses) < 10:
                first_losses.append(value)
            reason = ""
            if not math.isfinite(value):
                reason = "nan: the loss is not a finite number (NaN or inf)"
            elif len(first_losses) == 10 and value > 3 * max(first_losses):
                reason = f"exploding loss: {value:.3g} is over 3x the first steps' {max(first_losses):.3g}"
            checkpoint = ""
            if not reason and cfg.checkpoint_interval and self.step % cfg.checkpoint_interval == 0:
                checkpoint = str(self.save())
            yield TrainEvent(step, cfg.max_iters, value, ev_val, ev_train, tps, mfu, lr, elapsed, eta, self.device,
                             text, f"{reason}" if reason else "", checkpoint, self.world.size)
            if reason:
                return


def keep_previous(path: Path) -> Path | None:
    """Keep the checkpoint at `path` (if any) as `<stem>-<its date and time>.pt` beside it.

    A hard link (or a copy where links are not possible), so `path` itself stays in place
    until the new checkpoint atomically replaces it. Returns the kept file, or None.
    `ckpt.pt` written 2026-11-27 23:40:05 -> `ckpt-20261127-234005.pt` (then `-2`, `-3` if taken).
    Only the newest `KEEP_PREVIOUS` kept files stay."""
    if not path.is_file():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(path.stat().st_mtime))
    kept = path.with_name(f"{path.stem}-{stamp}{path.suffix}")
    n = 2
    while kept.exists():
        kept = path.with_name(f"{path.stem}-{stamp}-{n}{path.suffix}")
        n += 1
    try:
        os.link(path, kept)
    except OSError:
        shutil.copy2(path, kept)
    older = sorted(path.parent.glob(f"{path.stem}-*{path.suffix}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in older[KEEP_PREVIOUS:]:  # the newest few are kept; the oldest go
        stale.unlink(missing_ok=True)
    return kept


KEEP_PREVIOUS = 3  # earlier runs' checkpoints kept beside ckpt.pt (a gpu-gpt2 one is ~1 GB)


# torch names a module it always refuses ("... whose module posix is blocked") apart from a
# class it merely does not allow by default ("Unsupported global: GLOBAL numpy...").
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint with `weights_only=True`: tensors and plain values, never code.

    A pickle that would call a function or build an arbitrary object (what a full unpickle would
    run) is refused with a LabError that names it, before any of it runs."""
    import pickle

    import torch

    p = Path(path)
    if not p.exists():
        raise LabError(f"no checkpoint at {p}.", "Train one first: `deepdive-lab train`.")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = _GLOBAL.search(text)
        name = found.group(1) if found else "an object that is not a tensor or a plain value"
        if "is blocked" in text:
            raise LabError(f"{p.name} was refused: loading it would run {name} (code hidden in the file), "
                           "and the lab loads checkpoints as weights only.",
                           "Do not use this file unless you know exactly where it came from.") from None
        raise LabError(f"{p.name} needs a full unpickle (it holds {name}), which can run code; the lab loads "
                       "checkpoints as weights only (tensors, numbers, strings, lists and dicts).",
                       "This is not a checkpoint the lab wrote (those hold only such values): train one with "
                       "`deepdive-lab train`, or save your own model's tensors and plain values with torch.save.") from None
    except Exception as exc:
        raise LabError(f"{p.name} is not a readable checkpoint ({exc.__class__.__name__}).") from exc
    if not isinstance(ckpt, dict):
        raise LabError(f"{p.name} is not a deepdive-lab checkpoint (it holds a {type(ckpt).__name__}, not a dict).")
    return ckpt
