"""SFT on the lab's tiny GPT: a real seeded run (pretrain, then SFT) learns to end its turns.

One short run is shared by the module (about half a minute on a 2-core CPU)."""

from __future__ import annotations

import threading

import pytest

from lab import catalogue
from lab.bpe import encode_with_merges
from lab.conversations import render_conversation
from lab.sft import SFTConfig, SFTTrainer, TinyChat, pack, sample_replies
from lab.types import ChatMessage

CFG = dict(n_layer=2, n_head=2, n_embd=64, bpe_vocab=320, pretrain_bytes=40_000, task_docs=300, pretrain_iters=150,
           max_iters=250, lr_decay_iters=250, learning_rate=3e-3, block_size=128, batch_size=8,
           counts=(120, 0, 0, 160), held_out=0.2, eval_interval=125, eval_iters=2, sample_interval=0, seed=7)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("lab-cache")


@pytest.fixture(scope="module")
def run(cache):
    chat = TinyChat(SFTConfig(**CFG, out_dir=str(cache / "tiny-chat")))
    events = list(chat.run())
    return chat, events


def _held_questions(chat, n=24):
    seen, out = set(), []
    for e in chat.sft.held_out:
        if e.question not in seen:
            seen.add(e.question)
            out.append(e)
    return out[:n]


def test_after_sft_replies_end_with_the_end_of_turn_token(run):
    chat, events = run
    assert [p for p, _ in events].count("pretrain") == 151 and events[-1][1].stopped == "done"
    held = _held_questions(chat)
    assert len(held) >= 15
    before = sample_replies(chat.pretrainer.model, chat.vocab, held, max_tokens=80, seed=1)
    after = sample_replies(chat.sft.model, chat.vocab, held, max_tokens=80, seed=1)
    rate_before = sum(r.ended for r in before) / len(held)
    rate_after = sum(r.ended for r in after) / len(held)
    assert rate_after >= 0.9, [r for r in after if not r.ended]
    assert rate_before <= 0.2, rate_before


def test_sft_loss_falls_and_uses_only_assistant_tokens(run):
    chat, events = run
    sft = [e for p, e in events if p == "sft"]
    assert sft[-1].eval_train_loss < 0.5 * sft[0].eval_train_loss and sft[-1].val_loss < 0.8 * sft[0].val_loss
    fmt = chat.vocab.chat_format()
    conv = chat.sft.held_out[0].messages
    r = render_conversation(fmt, conv)
    tokens, targets, padding = pack([(list(r.ids), list(r.mask))], len(r.ids) + 3, chat.vocab.end_of_turn)
    trained = [int(t) for t in targets[0] if t != -100]
    assert chat.vocab.decode(trained) == conv[-1].content + "<|im_end|>"  # the answer and its end, nothing else
    assert padding == pytest.approx(3 / (len(r.ids) + 3))
    assert 0 <= chat.sft.padding < 0.15  # first-fit packing wastes little of each step


def test_vocabulary_encodes_as_the_lab_bpe_and_parses_chat_tokens(run):
    chat, _ = run
    v = chat.vocab
    from lab.train import Corpus

    reference = Corpus("bpe", v.pieces[:-2])._lookup()
    for text in ["The answer is $42.", "s-t-r-a-w-b-e-r-r-y", "ROMEO: 12 * 12 = 144 ✓", "  \n\tπ≈3.14"]:
        assert v.encode_plain(text) == encode_with_merges(text.encode(), reference)
        assert v.decode(v.encode(text)) == text
    ids = v.encode("<|im_start|>user\nhi<|im_end|>")
    assert ids[0] == v.specials["<|im_start|>"] and ids[-1] == v.end_of_turn
    assert v.encode_plain("<|im_end|>") != [v.end_of_turn]
    assert v.encode_long(b"The answer is 9. 9 / 3 = 3") == v.encode_plain("The answer is 9. 9 / 3 = 3")


def test_tiny_chat_opens_from_the_catalogue_as_a_chat_model(run, cache, monkeypatch):
    import numpy as np
    import torch

    chat, _ = run
    monkeypatch.setenv("DEEPDIVE_LAB_CACHE", str(cache))
    assert "tiny-chat" in [e.name for e in catalogue.discover()]
    b = catalogue.load("tiny-chat")
    assert b.info.has_chat_template and b.eos_ids == {chat.vocab.end_of_turn}
    messages = [ChatMessage("user", "Who made you?")]
    rendered = b.render_chat(messages)
    assert rendered.ids[-3:] == tuple(chat.vocab.encode("<|im_start|>assistant\n"))[-3:]
    assert [b.token_bytes(rendered.ids[s.start]) for s in rendered.special] == [b"<|im_start|>", b"<|im_end|>",
                                                                                  b"<|im_start|>"]
    with torch.no_grad():
        ref, _ = chat.sft.model.eval()(torch.tensor([list(rendered.ids)]))
    assert np.allclose(b.logits(rendered.ids), ref[0, -1].numpy(), atol=1e-4)


def test_stop_from_another_thread_then_resume(run, tmp_path):
    chat, _ = run
    cfg = SFTConfig(**{**CFG, "max_iters": 12, "lr_decay_iters": 12, "eval_interval": 100}, out_dir=str(tmp_path))
    t = SFTTrainer(cfg, chat.vocab, chat.sft.model.state_dict())
    it = t.run()
    for _ in range(3):
        next(it)
    stopper = threading.Thread(target=t.stop)
    stopper.start()
    stopper.join()
    stopped = next(it)
    assert stopped.stopped == "stopped" and (tmp_path / "ckpt.pt").exists()
    resumed = SFTTrainer.resume_from(tmp_path / "ckpt.pt")
    assert resumed.step == t.step == 3
    events = list(resumed.run())
    assert events[0].step == 3 and events[-1].stopped == "done" and resumed.step == 12


def test_cli_sft_prints_events_and_saves_tiny_chat(tmp_path, monkeypatch, capsys):
    from deepdive_lab.cli import main

    monkeypatch.setenv("DEEPDIVE_LAB_CACHE", str(tmp_path))
    assert main(["sft", "tiny", "--preset", "cpu-quick", "--steps", "4", "--pretrain-steps", "4", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "pretrain step 0/4" in out and "sft step 3/4" in out
    assert f"saved tiny-chat: {tmp_path / 'tiny-chat' / 'ckpt.pt'}" in out
    assert catalogue.resolve("tiny-chat").path == str(tmp_path / "tiny-chat" / "ckpt.pt")


def test_cli_sft_bad_data_says_which_line(tmp_path, capsys):
    from deepdive_lab.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"}, '
                   '{"role": "user", "content": "and?"}]}\n')
    assert main(["sft", "tiny", "--data", str(bad)]) == 1
    assert "line 1 ends with a user turn" in capsys.readouterr().err


def test_answer_first_vs_working_first_scores_the_same_held_out_problems(tmp_path):
    from lab.sft import StyleExperiment
    from lab.sft_data import checker

    cfg = SFTConfig(**{**CFG, "counts": (0, 160, 0, 0), "pretrain_iters": 60, "max_iters": 80, "lr_decay_iters": 80,
                       "eval_interval": 1000}, out_dir=str(tmp_path))
    exp = StyleExperiment(cfg, problems=12, seed=1)
    phases = [p for p, _ in exp.run()]
    assert phases.count("sft answer") == phases.count("sft working") == 81
    answer, working = exp.results["answer"], exp.results["working"]
    assert [s.question for s in answer] == [s.question for s in working] and len(answer) == 12
    truths = {e.question: e for e in exp.current.held_out}
    for s in answer + working:  # each verdict is the checker's own reading of the sampled reply
        verdict = checker(truths[s.question])(s.reply)
        assert (s.passed, s.got) == (verdict.passed, verdict.got)
    assert all(e.messages[-1].content.endswith(f"The answer is ${e.truth}.") for e in exp.current.held_out)
