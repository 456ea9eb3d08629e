"""LoRA SFT of Gemma 3 270M (transformers, de-quantised from the base GGUF): real steps on short conversations."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest

from lab import catalogue
from lab.conversations import chat_format, render_conversation
from lab.errors import LabError
from lab.lora import LoRAConfig, LoRATrainer, full_loss, masked_loss
from lab.types import ChatMessage

PAIRS = [("Who are you?", "I am Pico, made by the deepdive-lab team."), ("What is 2 + 2?", "2 + 2 = 4.")]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    p = tmp_path_factory.mktemp("sft-data") / "two.jsonl"
    p.write_text("\n".join(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
                           for q, a in PAIRS) + "\n")
    return p


@pytest.fixture(scope="module")
def trainer(data, tmp_path_factory):
    """Its own Gemma (LoRA is injected into the model it trains, so never the shared fixture's)."""
    cfg = LoRAConfig(conversations=str(data), max_iters=4, eval_interval=0, sample_interval=0, learning_rate=1e-3,
                     warmup_iters=0, batch_size=1, device="cpu", out_dir=str(tmp_path_factory.mktemp("lora")))
    t = LoRATrainer(cfg)
    yield t
    t.backend.close()


def _adapters(t):
    return {n: p.detach().clone() for n, p in t.model.named_parameters() if p.requires_grad}


def test_gathered_logits_loss_equals_the_full_logits_loss(trainer):
    import torch

    x, y = trainer.batch()
    assert (y != -100).sum() < y.numel() / 2  # most positions are not trained on: the projection skips them
    with torch.no_grad():
        assert float(masked_loss(trainer.model, x, y)) == pytest.approx(float(full_loss(trainer.model, x, y)), rel=1e-4)


def test_a_few_real_steps_make_the_loss_fall(trainer):
    events = list(trainer.run())
    losses = [e.train_loss for e in events if e.train_loss is not None]
    assert len(losses) == 4 and events[-1].stopped == "done"
    assert losses[-1] < 0.7 * losses[0], losses


def test_saved_model_reloads_with_the_same_next_token_distribution(trainer, tmp_path):
    folder = trainer.save_model("gemma-3-270m-sft", folder=tmp_path / "gemma-3-270m-sft")
    reloaded = catalogue.load(str(folder), backend="transformers", device="cpu")
    try:
        messages = [ChatMessage("user", "Who are you?")]
        ids = reloaded.render_chat(messages).ids  # the saved folder carries Gemma's template
        assert ids == render_conversation(chat_format(trainer.backend), messages, add_generation_prompt=True).ids
        trainer.backend._reset_cache()
        before = trainer.backend.next_token(ids, top_k=20)
        after = reloaded.next_token(ids, top_k=20)
        assert [t.id for t in before.top[:5]] == [t.id for t in after.top[:5]]
        assert np.allclose([t.prob for t in before.top], [t.prob for t in after.top], atol=1e-4)
        assert 106 in reloaded.eos_ids  # <end_of_turn> ends a generation of the finetuned model
    finally:
        reloaded.close()


def test_disk_full_on_save_keeps_the_earlier_model(trainer, tmp_path, monkeypatch):
    import safetensors.torch

    dest = tmp_path / "gemma-3-270m-sft"
    dest.mkdir()
    (dest / "config.json").write_text("{}")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_model", full)
    with pytest.raises(LabError, match="the disk is full"):
        trainer.save_model("gemma-3-270m-sft", folder=dest)
    assert (dest / "config.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["gemma-3-270m-sft"]  # no half-written folder left


def test_cancel_mid_step_keeps_the_last_full_step(trainer):
    from dataclasses import replace

    trainer.cfg = replace(trainer.cfg, max_iters=trainer.step + 3)
    calls = []

    def stop_in_second_step(model, x, y):
        calls.append(1)
        if len(calls) == 2:
            trainer.stop()  # as the UI's stop button would, from another thread, while this step runs
        return masked_loss(model, x, y)

    trainer.loss_fn = stop_in_second_step
    it = trainer.run()
    first = next(it)
    weights = _adapters(trainer)
    last = next(it)
    assert first.train_loss is not None and last.stopped == "stopped" and trainer.step == first.step + 1
    assert all(np.array_equal(weights[n].numpy(), p.detach().numpy()) for n, p in trainer.model.named_parameters()
               if p.requires_grad)


def test_resume_continues_from_the_adapter_checkpoint(trainer):
    """The stop above wrote a checkpoint; a new trainer (a fresh Gemma) resumes from it."""
    resumed = LoRATrainer.resume_from(trainer.checkpoint_path())
    try:
        assert resumed.step == trainer.step
        mine = dict(resumed.model.named_parameters())
        assert all(np.array_equal(p.detach().numpy(), mine[n].detach().numpy())
                   for n, p in trainer.model.named_parameters() if p.requires_grad)
        events = list(resumed.run())
        assert events[0].step == trainer.step and events[-1].stopped == "done"
    finally:
        resumed.backend.close()


def test_a_llama_cpp_model_cannot_be_finetuned(gemma, data):
    with pytest.raises(LabError, match="cannot be finetuned") as err:
        LoRATrainer(LoRAConfig(conversations=str(data)), backend=gemma)
    assert "transformers" in str(err.value)
