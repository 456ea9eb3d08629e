"""RLHF engine (lab.rlhf): rankings, the simulated person, a Bradley-Terry reward model, RL against it.

One tiny chat model (a few seconds of pretraining and SFT) and one seeded ranking + reward model are
shared by the module; each RL run here is a few steps."""

from __future__ import annotations

import math
import threading

import pytest

from lab.errors import LabError
from lab.rlhf import RLHF, Cost, Prompt, Ranking, RLHFConfig, make_prompts, person_scores, simulated_person

CHAT = dict(n_layer=2, n_head=2, n_embd=64, bpe_vocab=320, pretrain_bytes=40_000, task_docs=300, pretrain_iters=150,
            max_iters=250, lr_decay_iters=250, learning_rate=3e-3, block_size=128, batch_size=8,
            counts=(120, 0, 0, 160), held_out=0.2, eval_interval=125, eval_iters=2, sample_interval=0, seed=7)
CFG = RLHFConfig(prompts=40, held_out=0.3, max_tokens=24, rm_steps=120, rl_steps=4, rl_prompts=4, group=4,
                 eval_every=2, seed=0)


@pytest.fixture(scope="module")
def chat_path(tmp_path_factory):
    from lab.sft import SFTConfig, TinyChat

    out = tmp_path_factory.mktemp("tiny-chat")
    for _ in TinyChat(SFTConfig(**CHAT, out_dir=str(out))).run():
        pass
    return out / "ckpt.pt"


@pytest.fixture(scope="module")
def job(chat_path):
    """Step 1 (the simulated person ranks every prompt) and step 2 (the reward model), seeded."""
    job = RLHF.from_checkpoint(chat_path, CFG)
    events = list(job.rank_all()) + list(job.train_reward_model())
    assert events[-1].phase == "reward model" and job.reward_model is not None
    return job


def test_simulated_person_scores_by_its_documented_parts():
    sea = Prompt("Write a line of verse about the sea.", "sea")
    assert simulated_person(sea, "The sea is wide and blue.") == pytest.approx(1.0)
    assert simulated_person(sea, "sea sea sea sea sea") == pytest.approx(0.3 + 0.2 + 0.25 / 25 + 0.1)
    assert simulated_person(sea, "") == 0.0
    assert simulated_person(sea, "The moon is wide and blue.") == pytest.approx(0.7)  # no topic: -0.3
    assert simulated_person(sea, "The sea is wide\nand blue.") == pytest.approx(0.9)  # two lines: -0.1
    assert len({p.text for p in make_prompts(60)}) == 60 and make_prompts(5, 1) == make_prompts(5, 1)
    with pytest.raises(LabError, match="ask for 1 to 60"):
        make_prompts(61)


def test_rankings_refuse_ties_and_missing_items_with_a_message():
    p = Prompt("Tell me a one-line joke about the king.", "king")
    replies = ["a", "b", "c", "d", "e"]
    r = Ranking.by_person(p, replies, [4, 0, 3, 1, 2])
    assert r.pairs()[:4] == [("e", "a"), ("e", "d"), ("e", "b"), ("e", "c")] and len(r.pairs()) == 10
    with pytest.raises(LabError, match="rollout 2 is ranked twice"):
        Ranking.by_person(p, replies, [1, 1, 0, 2, 3])
    with pytest.raises(LabError, match="rollouts 4, 5 are not ranked"):
        Ranking.by_person(p, replies, [0, 1, 2])
    with pytest.raises(LabError, match="there is no rollout 6"):
        Ranking.by_person(p, replies, [5, 0, 1, 2, 3])
    # the simulated person holds equal scores equal: those pairs teach the reward model nothing
    tied = Ranking.by_taste(p, ["The king is old.", "The king is old!", "king king king", "x", "The king is old."])
    assert ("The king is old.", "The king is old.") not in tied.pairs() and len(tied.pairs()) < 10
    assert tied.order[0] in (0, 1, 4) and tied.order[-1] == 3


def test_a_nan_score_is_refused_with_a_message():
    p = make_prompts(1)[0]
    with pytest.raises(LabError, match="gave nan for rollout 2"):
        person_scores(lambda _p, r: math.nan if r == "b" else 0.5, p, ["a", "b"])
    with pytest.raises(LabError, match="gave nan for rollout 2"):
        Ranking.by_taste(p, ["a", "b"], lambda _p, r: math.nan if r == "b" else 0.5)


def test_cost_sets_rankings_against_a_person_scoring_every_rollout():
    c = Cost(rankings=5_000, rollouts=5, rl_steps=1_000, prompts_per_step=1_000, group=1_000)
    assert c.naive == 1_000_000_000
    assert "5,000 rankings" in c.line() and "1,000,000,000 scores" in c.line()


def test_bradley_terry_loss_and_padding_examples():
    import torch

    from lab.reward_model import bradley_terry_loss, pad_batch

    assert bradley_terry_loss(torch.tensor([1.0]), torch.tensor([1.0])).item() == pytest.approx(math.log(2))
    assert bradley_terry_loss(torch.tensor([2.0]), torch.tensor([0.0])).item() == pytest.approx(
        -math.log(1 / (1 + math.exp(-2))))
    idx, lengths = pad_batch([[5, 6, 7], [8]], 2, 0)
    assert idx.tolist() == [[6, 7], [8, 0]] and lengths.tolist() == [2, 1]


def test_reward_model_ranks_held_out_pairs_better_than_chance(job):
    held = job._pairs(job.held_prompts)
    assert len(held) >= 60 and not {p.text for p in job.held_prompts} & {p.text for p in job.train_prompts}
    assert job.rm_accuracy == job.pair_accuracy(job.reward_model, held)
    assert job.rm_accuracy > 0.6, job.rm_accuracy
    # the reward model's score is its own head on the trunk: padding after a sequence changes nothing
    import torch

    from lab.reward_model import pad_batch

    a, b = held[0]
    block = job.reward_model.cfg.block_size
    one = job.reward_model(*pad_batch([a], block, 0))
    two = job.reward_model(*pad_batch([a, b + b], block, 0))  # a padded to the longer one
    assert torch.allclose(one[0], two[0], atol=1e-5)


def test_both_curves_come_from_the_models_and_the_same_seeds_give_the_same_curves(job):
    first, again = job.arm(), job.arm()
    list(first.reinforce())
    list(again.reinforce())
    assert first.curves.rm == again.curves.rm and first.curves.true == again.curves.true  # bit for bit
    assert len(first.curves.steps) == CFG.rl_steps + 1 and first.curves.held_steps == [0, 2, 4]
    assert first.curves.rm[-1] != first.curves.rm[0]  # the policy moved
    # another person scoring the same rollouts: the reward model's curve is the same, the true one follows
    harsh = job.arm(taste=lambda p, r: 2 * simulated_person(p, r) - 1)
    list(harsh.reinforce())
    assert harsh.curves.rm == first.curves.rm
    assert harsh.curves.true == pytest.approx([2 * t - 1 for t in first.curves.true])
    assert harsh.curves.held_true == pytest.approx([2 * t - 1 for t in first.curves.held_true])
    assert first.over_rated and all(o.gap >= first.over_rated[-1].gap for o in first.over_rated)


def test_early_stopping_goes_back_to_the_best_policy(job):
    import torch

    flat = job.arm(taste=lambda p, r: 0.5, patience=1, eval_every=1)  # a person never pleased more: stop at once
    events = list(flat.reinforce())
    assert events[-1].phase == "done" and "stopped early" in events[-1].text
    assert flat.curves.stopped_early_at == 1 and flat.curves.steps == [0]
    for name, p in flat.policy.state_dict().items():
        assert torch.equal(p, job.sft.state_dict()[name])


def test_kl_penalty_runs_from_the_same_seeds_and_changes_the_update(job):
    plain, kl = job.arm(), job.arm(kl_coef=1.0)
    list(plain.reinforce())
    list(kl.reinforce())
    assert plain.curves.rm[0] == kl.curves.rm[0]  # the same first rollouts from the same SFT model
    assert plain.curves.rm[1:] != kl.curves.rm[1:]  # then the penalty's gradient changes the update


def test_nan_rewards_do_not_poison_the_run(job):
    import torch

    class HalfNaN(torch.nn.Module):  # the trained reward model, with every other score NaN
        def __init__(self, rm):
            super().__init__()
            self.rm, self.cfg = rm, rm.cfg

        def forward(self, idx, lengths):
            s = self.rm(idx, lengths)
            return torch.where(torch.arange(len(s)) % 2 == 0, s, torch.full_like(s, math.nan))

    bad = job.arm()
    bad.reward_model = HalfNaN(job.reward_model)
    events = list(bad.reinforce())
    assert events[-1].text == "finished" and all(math.isfinite(v) for v in bad.curves.rm)
    assert all(torch.isfinite(p).all() for p in bad.policy.parameters())


def test_cancel_mid_run_stops_at_the_next_check(job):
    arm = job.arm(rl_steps=50)
    arm.cancel = threading.Event()  # its own: the shared job's stays clear
    calls = []

    def taste(p, r):  # the person's 20th score cancels, from another thread, as the UI's x would
        calls.append(1)
        if len(calls) == 20:
            t = threading.Thread(target=arm.stop)
            t.start()
            t.join()
        return simulated_person(p, r)

    arm.taste = taste
    events = list(arm.reinforce())
    assert events[-1].phase == "stopped" and arm.curves.steps == [0] and not job.cancel.is_set()


def test_cli_rlhf_prints_the_three_steps_and_the_defences(chat_path, capsys):
    from deepdive_lab.cli import main

    assert main(["rlhf", "--from", str(chat_path), "--prompts", "6", "--rm-steps", "3", "--steps", "2",
                 "--defences", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "rank step 6/6" in out and "reward model step 3/3" in out and "rl step 2/2" in out
    assert "kl penalty: rl step 0/2" in out and "early stop:" in out and "human judgments: 6 rankings" in out
    assert "most over-rated by the reward model:" in out


def test_cli_rlhf_without_a_chat_model_says_how_to_make_one(tmp_path, capsys):
    from deepdive_lab.cli import main

    assert main(["rlhf", "--from", str(tmp_path / "none.pt")]) == 1
    assert "no tiny-chat model at" in capsys.readouterr().err
