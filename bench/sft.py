"""SFT speed, as ratios measured side by side in one run (interleaved step by step, medians).

1. Gemma 3 270M LoRA SFT: tokens/s of the lab's step (trunk, then the output layer only at the
   assistant positions) vs the straightforward step (logits at every position, then the masked
   loss: what `model(..., labels=...)` and trl's SFTTrainer do), same model, LoRA, batches.
   Target >= 1.5x.
2. Tiny SFT: tokens/s of lab.sft's SFTTrainer (packed, masked conversations) vs lab.train's
   pretraining loop, same GPT shape, context and batch. Target >= 0.9x.
3. With --trl: trl's SFTTrainer (completion-only loss, same model, LoRA, conversations and batch size;
   its own batching) in the same run, tokens/s from its own token count. transformers' Trainer refuses
   the GGUF-converted model ("quantized with GGUF ... do not support training") until its quantizer
   is removed, as done here: the weights are plain float tensors already.

    python bench/sft.py [--gemma-steps 6] [--tiny-steps 60] [--device auto] [--skip-gemma] [--trl]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace


def _median_tps(times: list[tuple[float, int]]) -> float:
    return statistics.median(n / dt for dt, n in times)


def gemma(steps: int, device: str, with_trl: bool = False) -> None:
    from lab.lora import LoRAConfig, LoRATrainer, full_loss, masked_loss

    with tempfile.TemporaryDirectory() as out:
        t = LoRATrainer(LoRAConfig(device=device, batch_size=4, counts=(50, 50, 50, 50), out_dir=out))
        sync = (lambda: __import__("torch").cuda.synchronize()) if t.device == "cuda" else (lambda: None)
        batches = [t.batch("train") for _ in range(steps + 1)]
        tokens = [int((y != -100).numel()) for _, y in batches]
        timed: dict[str, list[tuple[float, int]]] = {"masked": [], "full": []}
        for i, (x, y) in enumerate(batches):
            for name, fn in (("masked", masked_loss), ("full", full_loss)) if i % 2 else (
                    ("full", full_loss), ("masked", masked_loss)):
                sync()
                t0 = time.perf_counter()
                loss = fn(t.model, x, y)
                t.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                t.optimizer.step()
                sync()
                if i:  # the first batch warms both up
                    timed[name].append((time.perf_counter() - t0, tokens[i]))
        peak = ""
        if t.device == "cuda":
            import torch

            peak = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
    lab, ref = _median_tps(timed["masked"]), _median_tps(timed["full"])
    trl_tps = trl_reference(steps, device) if with_trl else None
    trained = sum(int((y != -100).sum()) for _, y in batches) / sum(int(y.numel()) for _, y in batches)
    print(f"Gemma 3 270M LoRA r{t.cfg.rank} on {t.device}, batch {t.cfg.batch_size}, {steps} steps each "
          f"({trained:.0%} of positions trained on){peak}")
    print(f"  lab (masked positions only): {lab:,.0f} tok/s   full logits: {ref:,.0f} tok/s   "
          f"ratio {lab / ref:.2f}x (target >= 1.5)")
    if trl_tps is not None:
        print(f"  trl SFTTrainer: {trl_tps:,.0f} tok/s   lab / trl ratio {lab / trl_tps:.2f}x")


def trl_reference(steps: int, device: str) -> float:
    """tokens/s of trl's SFTTrainer on the same conversations (median over steps after the first)."""
    import warnings

    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from lab import catalogue
    from lab.conversations import GEMMA_TEMPLATE
    from lab.sft_data import default_set

    warnings.filterwarnings("ignore")
    b = catalogue.load("gemma-3-270m", backend="transformers", device=device)
    b.tok.chat_template = GEMMA_TEMPLATE
    b.model.hf_quantizer, b.model.is_quantized = None, False  # de-quantised already (see the docstring)
    if hasattr(b.model.config, "quantization_config"):
        del b.model.config.quantization_config
    rows = [{"prompt": [{"role": m.role, "content": m.content} for m in e.prompt],
             "completion": [{"role": "assistant", "content": e.messages[-1].content}]}
            for e in default_set(0, "working", 50, 50, 50, 50)]
    timed: list[tuple[float, int]] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            self.t0, self.n0 = time.perf_counter(), state.num_input_tokens_seen

        def on_step_end(self, args, state, control, **kw):
            timed.append((time.perf_counter() - self.t0, state.num_input_tokens_seen - self.n0))

    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(output_dir=out, max_steps=steps + 1, per_device_train_batch_size=4, learning_rate=2e-4,
                         report_to=[], save_strategy="no", use_cpu=b.device == "cpu", max_length=256,
                         completion_only_loss=True, include_num_input_tokens_seen=True, disable_tqdm=True,
                         logging_strategy="no")
        lora = LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM", target_modules=[
            "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        SFTTrainer(model=b.model, args=args, train_dataset=Dataset.from_list(rows), processing_class=b.tok,
                   peft_config=lora, callbacks=[Timer()]).train()
    return _median_tps(timed[1:])


def tiny(steps: int, device: str) -> None:
    from lab.sft import SFTConfig, ChatVocab, SFTTrainer, pretraining_text
    from lab.sft_data import examples_for
    from lab.train import Trainer

    cfg = SFTConfig(device=device, max_iters=10_000, lr_decay_iters=10_000, eval_interval=10**9, sample_interval=0,
                    pretrain_bytes=300_000)
    vocab = ChatVocab.train(pretraining_text(cfg), cfg.bpe_vocab)
    with tempfile.TemporaryDirectory() as out:
        sft = SFTTrainer(replace(cfg, out_dir=out), vocab, examples=examples_for(cfg))
        pre = Trainer(replace(cfg, out_dir=out), vocab)
        runs = {"sft": sft.run(), "pretrain": pre.run()}
        for it in runs.values():  # step 0 evaluates (eval_interval divides 0): leave it out
            next(it)
        timed: dict[str, list[tuple[float, int]]] = {"sft": [], "pretrain": []}
        n = cfg.batch_size * cfg.block_size
        for i in range(steps):
            for name in ("sft", "pretrain") if i % 2 else ("pretrain", "sft"):
                t0 = time.perf_counter()
                next(runs[name])
                timed[name].append((time.perf_counter() - t0, n))
    a, b = _median_tps(timed["sft"]), _median_tps(timed["pretrain"])
    print(f"tiny GPT {cfg.n_layer}x{cfg.n_head}x{cfg.n_embd}, context {cfg.block_size}, batch {cfg.batch_size}, "
          f"vocab {len(vocab.pieces)}, on {sft.device}, {steps} steps each (SFT rows {sft.padding:.1%} padding)")
    print(f"  SFT: {a:,.0f} tok/s   pretraining: {b:,.0f} tok/s   ratio {a / b:.2f}x (target >= 0.9)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gemma-steps", type=int, default=6)
    ap.add_argument("--tiny-steps", type=int, default=60)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--skip-gemma", action="store_true")
    ap.add_argument("--trl", action="store_true", help="also time trl's SFTTrainer on the same conversations")
    args = ap.parse_args()
    tiny(args.tiny_steps, args.device)
    if not args.skip_gemma:
        gemma(args.gemma_steps, args.device, args.trl)


if __name__ == "__main__":
    main()
