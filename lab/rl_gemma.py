"""RL on checked problems for a transformers model (the SFT'd Gemma 3 270M), through trl's GRPOTrainer.

    run = GemmaRL(GemmaRLConfig(steps=50))         # loads the model through transformers, LoRA adapters
    print(run.estimate())                           # what the run will cost here, before it starts
    for event in run.run():                         # lab.rl.RLEvent lines, as the tiny model's run
        print(event.line())
    run.save_model("gemma-3-270m-rl")               # a catalogue model: opens in every screen

Why trl here (and not for the tiny GPT): GRPOTrainer is the field's standard GRPO for Hugging Face
models: generation, group-normalised advantages, the DAPO token-level loss, an optional KL (`beta`)
to the reference (with peft the reference is the base with its adapters switched off: no second
copy of the model), LoRA through peft, bf16 and multi-GPU through accelerate. The tiny GPT is not a
transformers model, so it keeps lab.rl's own ~100 lines.

The problems, the split and the checkers are the tiny model's (lab.sft_data, lab.rl.problems'
rules): the reward is 1 when the Failures checker passes the completion, 0 otherwise; a checker that
raises scores 0 and the run goes on. The held-out pass rate is measured greedily with the adapters
on, before the first step and every `eval_interval` steps, by lab's own generation loop.

On a CPU a step is tens of seconds (generation of prompts x group completions dominates):
`estimate()` measures a short generation and says how long the run would take before it starts.
"""

from __future__ import annotations

import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError
from lab.rl import Attempt, RLEvent, TASKS


@dataclass
class GemmaRLConfig:
    model: str = "gemma-3-270m-sft"  # a catalogue name (the SFT'd Gemma), path or hub id
    tasks: tuple[str, ...] = TASKS
    steps: int = 50
    prompts_per_step: int = 4
    group: int = 8  # completions per prompt (trl's num_generations)
    max_tokens: int = 96  # most tokens per completion
    temperature: float = 1.0
    learning_rate: float = 5e-5
    beta: float = 0.0  # KL to the model with its adapters off (0: no reference pass, as trl's default)
    rank: int = 8
    alpha: int = 16
    held_out_problems: int = 32
    eval_interval: int = 10
    problems_n: int = 400  # problems generated for the train split
    seed: int = 0
    device: str = "auto"
    out_dir: str = ""  # trl's output folder (nothing is saved there but its state); "" = <cache>/gemma-rl


PRESETS: dict[str, GemmaRLConfig] = {
    # One H100: 64 completions of up to 96 tokens a step, bf16; a few seconds a step.
    "gpu": GemmaRLConfig(),
    # A CPU smoke run: minutes, not hours (estimate() says how many before it starts).
    "cpu-smoke": GemmaRLConfig(steps=2, prompts_per_step=1, group=4, max_tokens=24, held_out_problems=4,
                               eval_interval=2),
}


def make_problems(cfg: GemmaRLConfig):
    """(train, held-out) examples of cfg.tasks with known truths, seeded; the held-out questions never in train."""
    from lab.sft_data import default_set, split

    counts = {t: (cfg.problems_n if t in cfg.tasks else 0) for t in ("apples", "letters", "arithmetic")}
    if not any(counts.values()):
        raise LabError(f"no problems: pick tasks from {', '.join(TASKS)}.")
    examples = default_set(seed=cfg.seed, style="working", identity_n=0, apples_n=counts["apples"],
                           letters_n=counts["letters"], arithmetic_n=counts["arithmetic"])
    train, held = split(examples, held_out=0.1, seed=cfg.seed)
    if not train or not held:
        raise LabError("the task generators gave too few problems for a train and a held-out set.")
    return train, held[:cfg.held_out_problems]


def score_text(example, text: str) -> tuple[bool, str]:
    """(passed, what the checker read or why it failed) for one completion."""
    from lab.sft_data import checker

    try:
        verdict = checker(example)(text)
    except Exception as exc:  # a checker that raises is a failure with its reason, never the end of the run
        return False, f"checker failed: {exc.__class__.__name__}: {exc}"
    return bool(verdict.passed), str(verdict.got)


class GemmaRL:
    """GRPO (trl) with LoRA (peft) on a transformers chat model, scored by the lab's checkers."""

    def __init__(self, cfg: GemmaRLConfig, backend=None) -> None:
        from lab import catalogue
        from lab.conversations import chat_format
        from lab.lora import finetunable

        if cfg.steps < 1 or cfg.group < 2 or cfg.prompts_per_step < 1:
            raise LabError("steps and prompts per step must be at least 1, and a group at least 2 "
                           "(GRPO compares completions within a group).")
        self.cfg = cfg
        self.train, self.held_out = make_problems(cfg)
        self.backend = backend or catalogue.load(cfg.model, backend="transformers", device=cfg.device)
        finetunable(self.backend)
        self.fmt = chat_format(self.backend)
        self._stop = threading.Event()
        self.attempts: list[Attempt] = []
        self.trainer = None
        self.step = 0

    # ---- what it costs ---------------------------------------------------------------------
    def estimate(self) -> str:
        """Time a short batched generation here and say what the run would take (generation dominates)."""
        import torch

        model = self.backend.model
        ids = self._prompt_ids(self.train[0], self.cfg.group)
        full = torch.cat([ids, ids[:, -1:].repeat(1, self.cfg.max_tokens)], dim=1)  # a prompt + completion's length
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model(ids[:, :4], use_cache=False)  # warm-up: the first call pays for allocations
            t0 = time.perf_counter()
            out = model(ids, use_cache=True)
            past, nxt = out.past_key_values, ids[:, -1:]
            t1 = time.perf_counter()
            for _ in range(4):
                past = model(nxt, past_key_values=past, use_cache=True).past_key_values
            per_token = (time.perf_counter() - t1) / 4  # one decode step of `group` completions
            t2 = time.perf_counter()
            model(full, use_cache=False)
            whole = time.perf_counter() - t2  # one forward over the group's prompts and completions
        # per prompt: prefill + decode, then the update's forward and backward (~3 forwards)
        per_step = self.cfg.prompts_per_step * ((t1 - t0) + self.cfg.max_tokens * per_token + 3 * whole)
        total = per_step * self.cfg.steps
        where = self.backend.device
        return (f"{self.backend.info.name} on {where}: about {per_step:.0f} s a step, {_duration(total)} for "
                f"{self.cfg.steps} steps of {self.cfg.prompts_per_step} prompts x {self.cfg.group} completions "
                f"of up to {self.cfg.max_tokens} tokens (measured from a short generation here)")

    # ---- the run ---------------------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()

    def _prompt_ids(self, example, copies: int = 1):
        """The chat-templated prompt of `example` as a (copies, length) tensor on the model's device."""
        import torch

        from lab.conversations import render_prompt

        ids = list(render_prompt(self.fmt, example.prompt))
        return torch.tensor([ids] * copies, device=self.backend.model.device)

    def held_out_rate(self) -> float:
        """Greedy pass rate on the held-out problems (the adapters on, when there are any)."""
        import torch

        model, tok = (self.trainer.model if self.trainer is not None else self.backend.model), self.backend.tok
        was = model.training
        model.eval()
        passed = 0
        with torch.no_grad():
            for e in self.held_out:
                ids = self._prompt_ids(e)
                out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=self.cfg.max_tokens,
                                     do_sample=False, pad_token_id=tok.pad_token_id or 0)
                text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
                passed += score_text(e, text)[0]
        model.train(was)
        return passed / len(self.held_out)

    def run(self):
        """Yield RLEvents: step 0 (held-out before RL), one per GRPO step, then the stop."""
        import torch
        from datasets import Dataset
        from peft import LoraConfig
        from transformers import TrainerCallback
        from trl import GRPOConfig, GRPOTrainer

        cfg = self.cfg
        events: list[RLEvent] = []
        by_question = {e.question: e for e in self.train}
        runner = self

        def reward(prompts, completions, question, **_):
            rewards, attempts = [], []
            for q, c in zip(question, completions):
                text = c[0]["content"] if isinstance(c, list) else str(c)
                passed, got = score_text(by_question[q], text)
                rewards.append(1.0 if passed else 0.0)
                attempts.append(Attempt(q, by_question[q].truth, text, passed, got))
            runner.attempts = attempts
            return rewards

        class Events(TrainerCallback):
            def __init__(self) -> None:
                self.t0 = time.perf_counter()

            def on_log(self, args, state, control, logs=None, **kw):
                if not logs or "reward" not in logs:
                    return
                runner.step = state.global_step
                held = runner.held_out_rate() if state.global_step % cfg.eval_interval == 0 else None
                attempts = tuple(runner.attempts)
                hist = [0] * (cfg.group + 1)
                for g in range(0, len(attempts), cfg.group):
                    hist[sum(a.passed for a in attempts[g:g + cfg.group])] += 1
                events.append(RLEvent(state.global_step, cfg.steps, pass_rate=float(logs["reward"]), held_out=held,
                                      mean_length=float(logs.get("completions/mean_length", 0.0)),
                                      histogram=tuple(hist), attempts=attempts, loss=float(logs.get("loss", 0.0)),
                                      kl=float(logs.get("kl", 0.0) or 0.0), seconds=time.perf_counter() - self.t0))
                self.t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                if runner._stop.is_set():
                    control.should_training_stop = True

        rows = [{"prompt": [{"role": m.role, "content": m.content} for m in e.prompt], "question": e.question}
                for e in self.train]
        model, tok = self.backend.model, self.backend.tok
        for attr in ("hf_quantizer",):  # a GGUF de-quantised by transformers is flagged "quantized": it is not
            if getattr(model, attr, None) is not None:
                setattr(model, attr, None)
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tok.chat_template = self.fmt.template
        on_gpu = self.backend.device not in ("cpu", "mps")
        args = GRPOConfig(output_dir=cfg.out_dir or str(_cache("gemma-rl")), max_steps=cfg.steps,
                          per_device_train_batch_size=cfg.prompts_per_step * cfg.group, num_generations=cfg.group,
                          max_completion_length=cfg.max_tokens, temperature=cfg.temperature,
                          learning_rate=cfg.learning_rate, beta=cfg.beta, logging_steps=1, report_to=[],
                          save_strategy="no", use_cpu=not on_gpu, bf16=on_gpu, seed=cfg.seed,
                          dataloader_num_workers=0, disable_tqdm=True)
        lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                            "gate_proj", "up_proj", "down_proj"],
                          task_type="CAUSAL_LM")
        torch.manual_seed(cfg.seed)
        yield RLEvent(0, cfg.steps, held_out=self.held_out_rate())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args,
                                       train_dataset=Dataset.from_list(rows), processing_class=tok,
                                       peft_config=lora, callbacks=[Events()])
            from transformers.trainer_callback import PrinterCallback, ProgressCallback

            for quiet in (PrinterCallback, ProgressCallback):  # events are ours to print, never trl's
                self.trainer.remove_callback(quiet)
            done = threading.Event()
            error: list[BaseException] = []

            def train() -> None:
                try:
                    self.trainer.train()
                except BaseException as exc:  # reported as the run's stop, never a traceback
                    error.append(exc)
                finally:
                    done.set()

            worker = threading.Thread(target=train, name="gemma-grpo", daemon=True)
            worker.start()
            shown = 0
            while not done.wait(0.2) or shown < len(events):
                while shown < len(events):
                    yield events[shown]
                    shown += 1
        why = ("stopped" if self._stop.is_set() else "done") if not error else \
            f"failed: {error[0].__class__.__name__}: {error[0]}"
        yield RLEvent(self.step, cfg.steps, held_out=self.held_out_rate() if not error else None, stopped=why)

    def save_model(self, name: str = "gemma-3-270m-rl") -> Path:
        """The model with its RL adapters merged, as a catalogue model (lab.lora's atomic writer)."""
        from lab.lora import LoRATrainer

        if self.trainer is None:
            raise LabError("nothing to save: the run has not started.")
        saver = LoRATrainer.__new__(LoRATrainer)  # its save_model needs only these four
        saver.model, saver.backend, saver.fmt = self.trainer.model, self.backend, self.fmt
        saver.eot = self.fmt.tokenize(self.fmt.end_of_turn)[0]
        return saver.save_model(name)


def _cache(name: str) -> Path:
    from lab.paths import cache_dir

    return cache_dir() / name


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} minutes"
    return f"about {seconds / 3600:.1f} hours"
