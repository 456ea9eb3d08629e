"""RL on the tiny GPT: rollouts (cache, seeds, cancel), the two update rules, the run, bad inputs."""

from __future__ import annotations

import math
import threading
from dataclasses import replace

import pytest
import torch

from lab.errors import CancelledError, LabError
from lab.gpt import GPT, GPTConfig
from lab.rl import RLConfig, RLTrainer, group_advantages, keep_step, policy_gradient_step, problems
from lab.rollouts import KVCache, cached_logits, sample_groups, sequence_logprobs
from lab.sft import ChatVocab
from lab.sft_data import default_set, split


@pytest.fixture(scope="module")
def vocab():
    text = "\n".join(f"{e.question}\n{e.messages[-1].content}" for e in default_set(1, "working", 0, 20, 20, 40))
    return ChatVocab.train(text.encode(), 300)


def tiny_model(vocab, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=len(vocab.pieces), block_size=96, n_layer=1, n_head=2, n_embd=32))


def prompts_of(vocab, n=2):
    return [vocab.encode(f"<|im_start|>user\nWhat is {10 + i} + 3?<|im_end|>\n<|im_start|>assistant\n")
            for i in range(n)]


# ---- rollouts -------------------------------------------------------------------------------------

def test_cached_decode_matches_forward_with_left_padding(vocab):
    model = tiny_model(vocab).eval()
    long, short = prompts_of(vocab)[0], prompts_of(vocab)[0][:-3]
    pad = len(long) - len(short)
    idx = torch.tensor([[0] * pad + short, long])
    ok = torch.tensor([[False] * pad + [True] * len(short), [True] * len(long)])
    pos = (torch.arange(len(long))[None] - torch.tensor([pad, 0])[:, None]).clamp(min=0)
    cache = KVCache(model, 2, len(long) + 1)
    with torch.no_grad():
        got = cached_logits(model, idx, pos, ok, cache)
        ref_short = model(torch.tensor([short]))[0][0, -1]
        ref_long = model(torch.tensor([long]))[0][0, -1]
        torch.testing.assert_close(got[0], ref_short, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got[1], ref_long, atol=1e-5, rtol=1e-4)
        nxt = torch.tensor([[5], [7]])  # one more token through the cache
        ok2 = torch.cat((ok, torch.ones(2, 1, dtype=torch.bool)), 1)
        got2 = cached_logits(model, nxt, pos[:, -1:] + 1, ok2, cache)
        torch.testing.assert_close(got2[0], model(torch.tensor([short + [5]]))[0][0, -1], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got2[1], model(torch.tensor([long + [7]]))[0][0, -1], atol=1e-5, rtol=1e-4)


def test_rollouts_are_seeded_grouped_and_logprobs_match_the_model(vocab):
    model = tiny_model(vocab)
    prompts = prompts_of(vocab, 3)
    a = sample_groups(model, vocab, prompts, 4, 12, seed=5)
    b = sample_groups(model, vocab, prompts, 4, 12, seed=5)
    c = sample_groups(model, vocab, prompts, 4, 12, seed=6)
    assert a == b and a != c
    assert [len(g) for g in a] == [4, 4, 4] and [r.prompt for r in a[1]] == [1, 1, 1, 1]
    assert all(len(r.ids) <= 12 and (r.ids[-1] == vocab.end_of_turn) == r.ended for g in a for r in g)
    r = a[0][0]
    lp = sequence_logprobs(model, prompts[0], [r.ids])[0]
    seq = torch.tensor([prompts[0] + list(r.ids)])
    full = torch.log_softmax(model(seq, torch.zeros_like(seq))[0][0], -1)
    ref = full[len(prompts[0]) - 1:-1].gather(1, torch.tensor(r.ids)[:, None])[:, 0]
    torch.testing.assert_close(lp, ref)


def test_a_rows_samples_do_not_depend_on_the_rest_of_the_batch(vocab):
    """Per-row generators: prompt 0's samples alone equal its samples beside a longer, padded prompt
    (up to float ties in the last bits of the logits, which a uniform draw hits with probability ~1e-6)."""
    model = tiny_model(vocab)
    short = prompts_of(vocab, 1)[0]
    longer = vocab.encode("<|im_start|>user\nHow many r are in the word strawberry?<|im_end|>\n<|im_start|>assistant\n")
    assert len(longer) != len(short)
    alone = sample_groups(model, vocab, [short], 4, 16, seed=9)[0]
    mixed = sample_groups(model, vocab, [short, longer], 4, 16, seed=9)
    assert [r.ids for r in mixed[0]] == [r.ids for r in alone]
    assert all(len(r.ids) <= 16 for r in mixed[1]) and len(mixed[1]) == 4


def test_rows_that_fill_the_context_beside_longer_running_rows(vocab):
    """A longer prompt's rows fill the context first; finished rows may stay in the batch while the
    shorter prompt's rows go on, and every row stops at the context."""
    model = tiny_model(vocab)  # block_size 96
    short, longer = prompts_of(vocab, 1)[0], vocab.encode("<|im_start|>user\n" + "strawberry " * 3 + "<|im_end|>\n")
    end = vocab.end_of_turn
    model.head.bias = torch.nn.Parameter(torch.zeros(len(vocab.pieces)))  # never end the turn
    with torch.no_grad():
        model.head.bias[end] = -1e9
    groups = sample_groups(model, vocab, [longer] + [short] * 4, 2, 500, seed=1)  # 2 of 10 rows finish first
    assert [len(r.ids) for r in groups[0]] == [96 - len(longer)] * 2
    assert [len(r.ids) for g in groups[1:] for r in g] == [96 - len(short)] * 8
    assert not any(r.ended for g in groups for r in g)


def test_cancel_mid_rollout_stops_between_tokens(vocab):
    model = tiny_model(vocab)
    cancel = threading.Event()
    model.head.register_forward_hook(lambda *a: cancel.set())  # set while the first token is computed
    with pytest.raises(CancelledError):
        sample_groups(model, vocab, prompts_of(vocab), 2, 20, cancel=cancel)


def test_bad_rollout_inputs_say_what_is_wrong(vocab):
    model = tiny_model(vocab)
    with pytest.raises(LabError, match="no prompts"):
        sample_groups(model, vocab, [], 2, 5)
    with pytest.raises(LabError, match="reads at most"):
        sample_groups(model, vocab, [[1] * 200], 2, 5)


# ---- advantages and updates on a toy policy whose right answer is known ------------------------------

def test_group_advantages():
    adv = group_advantages([1.0, 0.0, 0.0, 1.0])
    assert adv[0] > 0 > adv[1] and abs(sum(adv)) < 1e-9
    assert group_advantages([0.7] * 5) == [0.0] * 5
    nan = group_advantages([1.0, float("nan"), 0.0])
    assert nan[1] == 0.0 and nan[0] > 0 > nan[2] and all(math.isfinite(a) for a in nan)
    assert group_advantages([float("nan")] * 3) == [0.0] * 3


def _p_right(model, prompt):
    with torch.no_grad():
        return float(torch.softmax(model(torch.tensor([prompt]))[0][0, -1], -1)[:RIGHT].sum())


RIGHT = 30  # the toy task: a first token with id < RIGHT is right; its probability is the expected reward


@pytest.mark.parametrize("rule", ["grpo", "keep"])
def test_update_rules_raise_the_reward_of_a_toy_policy(vocab, rule):
    model = tiny_model(vocab)
    prompt = prompts_of(vocab, 1)[0]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    before = _p_right(model, prompt)
    for step in range(12):
        groups = sample_groups(model, vocab, [prompt], 32, 1, seed=step)
        rewards = [[1.0 if r.ids[0] < RIGHT else 0.0 for r in groups[0]]]
        if rule == "grpo":
            policy_gradient_step(model, opt, groups, [group_advantages(rewards[0])], prompts=[prompt])
        else:
            keep_step(model, opt, groups, rewards, prompts=[prompt])
    assert 0 < before < 0.3
    assert _p_right(model, prompt) > 1.5 * before


def test_equal_rewards_give_zero_advantage_and_the_weights_do_not_move(vocab):
    model = tiny_model(vocab)
    prompt = prompts_of(vocab, 1)[0]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)  # weight decay on: a taken step would move them
    before = {k: v.clone() for k, v in model.state_dict().items()}
    groups = sample_groups(model, vocab, [prompt], 6, 4, seed=1)
    adv = group_advantages([1.0] * 6)
    info = policy_gradient_step(model, opt, groups, [adv], prompts=[prompt])
    assert adv == [0.0] * 6 and info["skipped"] == 1.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    info = keep_step(model, opt, groups, [[0.0] * 6], prompts=[prompt])  # nothing passed: nothing kept
    assert info["skipped"] == 1.0 and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_kl_term_is_zero_at_the_reference_and_counts_when_asked(vocab):
    model = tiny_model(vocab)
    ref = tiny_model(vocab)
    prompt = prompts_of(vocab, 1)[0]
    groups = sample_groups(model, vocab, [prompt], 4, 6, seed=2)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    info = policy_gradient_step(model, opt, groups, [[0.0] * 4], ref_model=ref, kl_coef=0.1, prompts=[prompt])
    assert info["skipped"] == 0.0 and abs(info["kl"]) < 1e-6  # same weights: KL 0
    other = tiny_model(vocab, seed=1)
    info = policy_gradient_step(model, opt, groups, [[0.0] * 4], ref_model=other, kl_coef=0.1, prompts=[prompt])
    assert info["kl"] > 1e-4


# ---- the run ----------------------------------------------------------------------------------

def examples():
    return split(default_set(3, "working", 0, 0, 0, 30), 0.2, 3)


CFG = RLConfig(steps=2, prompts_per_step=2, group=4, max_tokens=10, held_out_problems=3, eval_interval=1,
               learning_rate=1e-3)


def test_same_seeds_give_the_same_rollouts_scores_and_update(vocab, tmp_path):
    runs = []
    for k in range(2):
        t = RLTrainer(replace(CFG, out_dir=str(tmp_path / str(k))), tiny_model(vocab), vocab, examples())
        events = list(t.run())
        runs.append((events, t.model.state_dict()))
    (ea, wa), (eb, wb) = runs
    assert [e.attempts for e in ea] == [e.attempts for e in eb] and len(ea[1].attempts) == 8
    assert [(e.pass_rate, e.held_out, e.loss) for e in ea] == [(e.pass_rate, e.held_out, e.loss) for e in eb]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert ea[-1].stopped == "done" and ea[-1].checkpoint.endswith("ckpt.pt")
    assert ea[0].step == 0 and ea[0].held_out is not None


def test_the_checkpoint_opens_as_a_chat_model(vocab, tmp_path):
    from lab.backends.tiny import TinyBackend
    from lab.catalogue import CatalogueEntry

    t = RLTrainer(replace(CFG, steps=1, out_dir=str(tmp_path)), tiny_model(vocab), vocab, examples())
    last = list(t.run())[-1]
    backend = TinyBackend.load(CatalogueEntry("tiny-chat-rl", last.checkpoint, "tiny", "file", 1))
    assert backend.model.state_dict()["wte.weight"].equal(t.model.state_dict()["wte.weight"])


def test_a_checker_that_raises_fails_the_rollout_with_its_reason_and_the_run_goes_on(vocab, tmp_path):
    def check(example, text):
        if "1" in text or len(text) % 2:
            raise ValueError("cannot read this")
        return True, "ok"

    t = RLTrainer(replace(CFG, out_dir=str(tmp_path)), tiny_model(vocab), vocab, examples(), check=check)
    events = list(t.run())
    failed = [a for e in events for a in e.attempts if a.got.startswith("checker failed")]
    assert events[-1].stopped == "done" and events[-1].step == 2
    assert failed and all("ValueError: cannot read this" in a.got and not a.passed for a in failed)


def test_no_problems_and_unknown_settings_are_refused(vocab):
    with pytest.raises(LabError, match="no problems"):
        RLTrainer(CFG, tiny_model(vocab), vocab, ([], []))
    with pytest.raises(LabError, match="update rule"):
        RLTrainer(replace(CFG, rule="magic"), tiny_model(vocab), vocab, examples())
    with pytest.raises(LabError, match="unknown task"):
        problems({}, ("chess",))
    train, held = problems({"counts": [0, 0, 0, 40]}, ("arithmetic",))
    assert {e.task for e in train + held} == {"arithmetic"} and not {e.question for e in train} & {
        e.question for e in held}


def test_stop_mid_run_writes_a_checkpoint(vocab, tmp_path):
    t = RLTrainer(replace(CFG, steps=50, out_dir=str(tmp_path)), tiny_model(vocab), vocab, examples())
    events = []
    for ev in t.run():
        events.append(ev)
        if ev.step == 1:
            t.stop()
    assert events[-1].stopped == "stopped" and events[-1].step == 1 and (tmp_path / "ckpt.pt").exists()


def test_stop_while_sampling_ends_the_run_stopped_not_failed(vocab, tmp_path):
    t = RLTrainer(replace(CFG, steps=50, out_dir=str(tmp_path)), tiny_model(vocab), vocab, examples())
    hook = t.model.head.register_forward_hook(lambda *a: t.stop())  # stop while the held-out replies are sampled
    events = list(t.run())
    hook.remove()
    assert [e.stopped for e in events] == ["stopped"] and events[0].step == 0 and (tmp_path / "ckpt.pt").exists()


def test_imperfect_data_has_the_asked_fraction_of_wrong_solutions_by_the_checker():
    from lab.rl import corrupt
    from lab.sft_data import checker

    clean = default_set(4, "working", 0, 100, 100, 100)
    bad = corrupt(clean, 0.3, seed=4)
    wrong = [not checker(e)(e.messages[-1].content).passed for e in bad]
    assert all(checker(e)(e.messages[-1].content).passed for e in clean)
    assert 0.2 < sum(wrong) / len(wrong) < 0.4
    assert [e.truth for e in bad] == [e.truth for e in clean] and [e.question for e in bad] == [e.question for e in clean]
    assert corrupt(clean, 0.3, seed=4) == bad
