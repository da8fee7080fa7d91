"""TATAR rewards: values, the Thurstone formula against a naive implementation, presets, TRL calls."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tatar import rewards
from tatar.rewards import (
    RewardSettings,
    format_reward,
    gaussian_rewards,
    make_gaussian_reward,
    make_thurstone_reward,
    pairwise_rank_rewards,
    reward_functions,
    score_completions,
    thurstone_rewards,
)


def msg(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def answer(score: float, words: int = 0) -> str:
    think = " ".join(["word"] * words)
    return (f"<think>\n{think}\n</think>\n" if words else "") + f"<answer>{score:.2f}</answer>"


# ---------------------------------------------------------------------------------------------
# Naive implementations of the spec formulas (double loops, math module).


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _bce(p: float, q: float, eps: float) -> float:
    q = min(1.0 - eps, max(eps, q))
    return -(p * math.log(q) + (1.0 - p) * math.log(1.0 - q))


def naive_thurstone(pred, gt, group, tau=0.08, m=0.12, eps=1e-6):
    """The spec's formula, written out: per completion, against every other group's mean."""
    n = len(pred)
    groups: dict = {}
    for i in range(n):
        groups.setdefault(group[i], []).append(i)
    stats = {}
    for gname, members in groups.items():
        vals = [min(1.0, max(0.0, pred[i] / 100)) for i in members if pred[i] is not None]
        if vals:
            mu = sum(vals) / len(vals)
            stats[gname] = (mu, sum((v - mu) ** 2 for v in vals) / len(vals), gt[members[0]] / 100)
    out = [0.0] * n
    if len(stats) < 2:
        return out
    for i in range(n):
        if pred[i] is None:
            continue
        q = min(1.0, max(0.0, pred[i] / 100))
        _, var_i, g_i = stats[group[i]]
        num = den = 0.0
        for gname, (mu_j, var_j, g_j) in stats.items():
            if gname == group[i]:
                continue
            p_gt = _sigmoid((g_i - g_j) / tau)
            p_pred = _sigmoid((q - mu_j) / math.sqrt(var_i + var_j + eps))
            w = math.exp(-abs(g_i - g_j) / m)
            num += w * _bce(p_gt, p_pred, eps)
            den += w
        out[i] = max(0.0, min(1.0, 1.0 - num / den / -math.log(eps)))
    return out


def naive_pairwise(pred, gt, tau=0.08, m=0.12, eps=1e-4):
    """The released `rank_reward` loop."""
    idx = [i for i in range(len(pred)) if pred[i] is not None]
    out = [0.0] * len(pred)
    if len(idx) < 2:
        return out
    for i in idx:
        num = den = 0.0
        for j in idx:
            if i == j:
                continue
            gi, gj = gt[i] / 100, gt[j] / 100
            qi, qj = min(1, max(0, pred[i] / 100)), min(1, max(0, pred[j] / 100))
            w = math.exp(-abs(gi - gj) / m)
            num += w * _bce(_sigmoid((gi - gj) / tau), _sigmoid((qi - qj) / tau), eps)
            den += w
        out[i] = max(0.0, min(1.0, 1 - num / den / -math.log(eps)))
    return out


def random_iaa_batch(rng, n_groups, size_range=(1, 9), fail=0.15, lo=0.0, hi=100.0):
    pred, gt, group = [], [], []
    for g in range(n_groups):
        truth = float(rng.uniform(lo, hi))
        center = truth + rng.normal(0, 15)
        for _ in range(int(rng.integers(*size_range))):
            # a few predictions outside 0-100 check the clipping; some fail to parse
            pred.append(
                None
                if rng.random() < fail
                else float(center + rng.normal(0, rng.choice([0.0, 3.0, 20.0])))
            )
            gt.append(truth)
            group.append(f"img{g}")
    return pred, gt, group


# ---------------------------------------------------------------------------------------------
# Gaussian


def test_gaussian_reference_values():
    r = gaussian_rewards([0.0, 8.75, 20.0], [0.0, 0.0, 0.0])
    assert r[0] == pytest.approx(1.0, abs=1e-12)
    assert r[1] == pytest.approx(0.546, abs=5e-4)
    assert r[2] == pytest.approx(0.068, abs=5e-4)
    assert rewards.sigma0_from_threshold(8.75, 0.5) == pytest.approx(7.4316, abs=1e-4)


def test_gaussian_reward_callable_and_iqa_word_gate():
    fn = make_gaussian_reward()
    completions = [
        msg(answer(60.0)),  # exact
        msg(answer(68.75)),  # 8.75 off
        msg(answer(80.0)),  # 20 off
        msg(answer(60.0, words=65 - 3)),  # 65 words: <think>, </think> and the answer count too
        msg(answer(60.0, words=66 - 3)),  # 66 words: over the gate
        msg("<answer>sixty</answer>"),
    ]
    r = fn(completions=completions, task=["iqa"] * 6, solution=[60.0] * 6)
    assert r[:3] == pytest.approx([1.0, 0.546, 0.068], abs=5e-4)
    assert len(completions[3][0]["content"].split()) == 65
    assert r[3] == pytest.approx(1.0)
    assert r[4] == 0.0
    assert r[5] == 0.0


def test_gaussian_paper_preset_gives_iaa_zero_and_clips_predictions():
    fn = make_gaussian_reward()
    r = fn(completions=[answer(50.0), answer(130.0)], task=["iaa", "iqa"], solution=[50.0, 100.0])
    assert r == [0.0, 1.0]  # IAA has no Gaussian term in the paper preset; 130 clips to 100


def test_released_iaa_anchor_saturates_and_floor():
    fn = make_gaussian_reward(iaa_alpha=2.0, iaa_scale=1.5, iaa_min_words=125)
    long = lambda s: answer(s, words=130)  # noqa: E731
    r = fn(
        completions=[long(57.0), long(57.7), long(58.0), answer(50.0, words=100), long(80.0)],
        task=["iaa"] * 5,
        solution=[50.0] * 5,
    )
    # x1.5 capped at 1: flat up to |err| ~ 7.73 (the released code's saturation)
    assert r[0] == 1.0 and r[1] == 1.0
    assert r[2] == pytest.approx(0.975, abs=1e-3)  # ref table: err 8 -> .975
    assert r[3] == 0.0  # under the 125-word floor
    assert r[4] == pytest.approx(min(1.0, 1.5 * gaussian_rewards([80.0], [50.0], alpha=2.0)[0]))


# ---------------------------------------------------------------------------------------------
# Thurstone


@pytest.mark.parametrize("seed", range(6))
def test_thurstone_equals_naive_formula(seed):
    rng = np.random.default_rng(seed)
    pred, gt, group = random_iaa_batch(rng, n_groups=int(rng.integers(2, 12)))
    expected = naive_thurstone(pred, gt, group)
    got = thurstone_rewards([np.nan if p is None else p for p in pred], gt, group)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert ((got >= 0) & (got <= 1)).all()


def test_thurstone_equals_naive_with_degenerate_groups():
    # zero-variance groups (the near-deterministic case), a group with no parsed completion,
    # predictions outside 0-100, equal ground truths in different groups
    pred = [50.0, 50.0, 50.0, None, None, 120.0, 70.0, -5.0, 30.0, 30.0]
    gt = [40.0, 40.0, 40.0, 60.0, 60.0, 90.0, 90.0, 40.0, 10.0, 10.0]
    group = ["a", "a", "a", "b", "b", "c", "c", "d", "e", "e"]
    expected = naive_thurstone(pred, gt, group)
    got = thurstone_rewards([np.nan if p is None else p for p in pred], gt, group)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert got[3] == got[4] == 0.0


def test_thurstone_rewards_the_correct_ranking():
    # image A (gt 70) ranks above image B (gt 40); B's completions sit at 40
    group = ["A", "A", "B", "B", "B"]
    gt = [70.0, 70.0, 40.0, 40.0, 40.0]
    right = thurstone_rewards([75.0, 65.0, 40.0, 41.0, 39.0], gt, group)
    wrong = thurstone_rewards([25.0, 65.0, 40.0, 41.0, 39.0], gt, group)
    assert right[0] > wrong[0] + 0.05
    # within one batch, the completion on the right side of B beats the one on the wrong side
    assert wrong[1] > wrong[0] + 0.05


def test_thurstone_needs_two_groups():
    assert thurstone_rewards([50.0, 60.0], [50.0, 50.0], ["x", "x"]).tolist() == [0.0, 0.0]
    assert thurstone_rewards([], [], []).tolist() == []
    # two groups, but one never parses: still fewer than two usable groups
    r = thurstone_rewards([50.0, np.nan], [50.0, 60.0], ["x", "y"])
    assert r.tolist() == [0.0, 0.0]
    fn = make_thurstone_reward()
    out = fn(
        completions=[msg(answer(50.0))] * 3, task=["iaa"] * 3, solution=[50.0] * 3, group=[0] * 3
    )
    assert out == [0.0, 0.0, 0.0]


def test_thurstone_gives_iqa_zero_and_uses_all_iaa_groups():
    fn = make_thurstone_reward()
    completions = [answer(s) for s in (70.0, 72.0, 30.0, 28.0, 55.0, 50.0)]
    task = ["iaa", "iaa", "iaa", "iaa", "iqa", "iqa"]
    solution = [75.0, 75.0, 25.0, 25.0, 50.0, 50.0]
    r = fn(completions=completions, task=task, solution=solution, group=[1, 1, 2, 2, 3, 3])
    assert r[4] == r[5] == 0.0
    iaa = thurstone_rewards([70.0, 72.0, 30.0, 28.0], solution[:4], [1, 1, 2, 2])
    np.testing.assert_allclose(r[:4], iaa, atol=1e-12)
    assert min(r[:4]) > 0.5


def test_thurstone_needs_a_group_column_or_a_prompt_id():
    rng = np.random.default_rng(3)
    pred, gt, group = random_iaa_batch(rng, n_groups=6, size_range=(4, 5), fail=0.1)
    completions = [
        msg("<answer>x</answer>" if p is None else f"<answer>{p:.6f}</answer>") for p in pred
    ]
    fn = make_thurstone_reward()
    task = ["iaa"] * len(pred)
    with pytest.raises(ValueError, match="needs the column 'group' \\(or 'prompt_id'\\)"):
        fn(completions=completions, task=task, solution=gt)
    with_group = fn(completions=completions, task=task, solution=gt, group=group)
    with_prompt_id = fn(completions=completions, task=task, solution=gt, prompt_id=group)
    assert with_group == with_prompt_id
    # IQA-only batches need no group (the reward is 0 for IQA anyway)
    assert fn(completions=completions[:2], task=["iqa"] * 2, solution=gt[:2]) == [0.0, 0.0]
    # Two adjacent images with the same score stay two groups when ids say so: guessing groups
    # from runs of equal (task, solution) would have merged them.
    same = [msg(answer(s)) for s in (70.0, 71.0, 20.0, 22.0, 40.0, 41.0)]
    kw = {"task": ["iaa"] * 6, "solution": [60.0, 60.0, 60.0, 60.0, 30.0, 30.0]}
    merged = fn(completions=same, group=[0, 0, 0, 0, 2, 2], **kw)
    split = fn(completions=same, group=[0, 0, 1, 1, 2, 2], **kw)
    assert merged != split


def test_thurstone_over_the_global_batch_not_per_process():
    # Two processes each hold one image x 4 completions (the released configuration).
    pred = [60.0, 62.0, 58.0, 61.0, 30.0, 33.0, 29.0, 31.0]
    gt = [65.0] * 4 + [35.0] * 4
    group = [0] * 4 + [1] * 4
    per_process = np.concatenate(
        [
            thurstone_rewards(pred[:4], gt[:4], group[:4]),
            thurstone_rewards(pred[4:], gt[4:], group[4:]),
        ]
    )
    global_batch = thurstone_rewards(pred, gt, group)
    assert per_process.tolist() == [0.0] * 8  # what the released code would have returned
    assert (global_batch > 0.5).all()


def test_thurstone_rejects_a_group_with_two_ground_truths():
    with pytest.raises(ValueError, match="different ground truths"):
        thurstone_rewards([50.0, 60.0, 70.0], [50.0, 51.0, 70.0], ["a", "a", "b"])


def test_thurstone_word_floor_zeroes_short_iaa_but_keeps_its_score_in_the_group():
    completions = [
        answer(70.0, words=130),
        answer(71.0, words=10),
        answer(30.0, words=130),
        answer(31.0, words=130),
    ]
    kwargs = {"task": ["iaa"] * 4, "solution": [75.0, 75.0, 25.0, 25.0], "group": [0, 0, 1, 1]}
    plain = make_thurstone_reward()(completions=completions, **kwargs)
    floored = make_thurstone_reward(iaa_min_words=125)(completions=completions, **kwargs)
    assert floored[1] == 0.0
    assert floored[0] == plain[0] and floored[2] == plain[2]


# ---------------------------------------------------------------------------------------------
# Released pairwise rank


def test_pairwise_rank_consensus_values_of_the_released_configuration():
    # One image per call: p_gt = 0.5 and the reward only measures agreement (ref report table).
    for delta, expected in [
        (0.0, 0.9247),
        (5.0, 0.9195),
        (10.0, 0.9048),
        (20.0, 0.8557),
        (50.0, 0.6605),
    ]:
        r = pairwise_rank_rewards([50.0, 50.0 + delta], [60.0, 60.0])
        assert r == pytest.approx([expected, expected], abs=1e-4)


def test_pairwise_rank_equals_released_loop():
    rng = np.random.default_rng(11)
    pred, gt, _ = random_iaa_batch(rng, n_groups=7)
    got = pairwise_rank_rewards([np.nan if p is None else p for p in pred], gt)
    np.testing.assert_allclose(got, naive_pairwise(pred, gt), atol=2e-6)
    assert pairwise_rank_rewards([50.0], [50.0]).tolist() == [0.0]


# ---------------------------------------------------------------------------------------------
# Format, think cost, presets, the TRL calling convention


def test_format_reward_accepts_messages_strings_and_parts():
    completions = [
        msg("<answer>73.42</answer>"),
        "<think>ok</think><answer> 5 </answer>",
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "<answer>1"},
                {"type": "text", "text": "0</answer>"},
            ],
        },
        msg("<answer>73.42 points</answer>"),
        msg("no answer"),
        msg("<answer></answer>"),
    ]
    assert format_reward(completions) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_think_cost_per_task():
    fn = rewards.make_think_cost(iqa_cost=0.5, iaa_cost=0.1, norm_words=10)
    r = fn(
        completions=[answer(50, words=5), answer(50, words=40), answer(50), answer(50, words=5)],
        task=["iqa", "iqa", "iqa", "iaa"],
    )
    assert r == pytest.approx([-0.25, -0.5, 0.0, -0.05])


def test_presets_names_weights_and_terms():
    funcs, weights = reward_functions("paper")
    assert [f.__name__ for f in funcs] == ["format_reward", "score_gaussian", "iaa_thurstone"]
    assert weights == [1.0, 1.0, 1.0]
    funcs, _ = reward_functions("released")
    assert [f.__name__ for f in funcs] == ["format_reward", "score_gaussian", "iaa_pairwise_rank"]
    funcs, weights = reward_functions("paper", think_cost_iqa=0.2, pairwise_rank_weight=0.5)
    names = [f.__name__ for f in funcs]
    assert len(set(names)) == len(names) == 5
    assert weights[names.index("iaa_pairwise_rank")] == 0.5
    s = RewardSettings.from_dict({"preset": "released", "threshold": 10.0})
    assert s.iaa_anchor and s.iaa_min_words == 125 and s.threshold == 10.0
    with pytest.raises(ValueError, match="unknown reward setting"):
        RewardSettings.from_dict({"thershold": 1})
    with pytest.raises(ValueError, match="unknown reward preset"):
        reward_functions("papers")


def test_released_preset_on_a_mixed_batch():
    completions = [
        answer(60.0),
        answer(60.0, words=70),
        answer(70.0, words=130),
        answer(40.0, words=130),
    ]
    terms = score_completions(
        completions,
        "released",
        task=["iqa", "iqa", "iaa", "iaa"],
        solution=[60.0, 60.0, 72.0, 35.0],
    )
    assert terms["score_gaussian"].tolist()[:3] == [1.0, 0.0, 1.0]
    assert terms["iaa_pairwise_rank"][0] == 0.0 and terms["iaa_pairwise_rank"][2] > 0.5
    np.testing.assert_allclose(
        terms["total"],
        terms["format_reward"] + terms["score_gaussian"] + terms["iaa_pairwise_rank"],
    )


def test_trl_calling_convention_extra_columns_and_caching():
    funcs, _ = reward_functions("paper")
    completions = [msg(answer(s)) for s in (70.0, 72.0, 30.0, 35.0)]
    kwargs = {
        "prompts": [[{"role": "user", "content": "x"}]] * 4,
        "completions": completions,
        "completion_ids": [[1, 2]] * 4,
        "task": ["iaa_score", "iaa_score", "iaa", "iaa"],  # the released names are accepted
        "solution": [75.0, 75.0, 25.0, 25.0],
        "group": ["a", "a", "b", "b"],
        "image": [object()] * 4,
        "dataset": ["ArtiMuse-10K"] * 4,
        "trainer_state": object(),
        "log_metric": lambda *a, **k: None,
        "log_extra": lambda *a, **k: None,
    }
    first = [f(**kwargs) for f in funcs]
    again = [f(**kwargs) for f in funcs]
    assert first == again
    assert all(len(r) == 4 and all(isinstance(v, float) for v in r) for r in first)
    # Reusing the list with new contents must not return stale (memoised) results.
    completions[0] = msg("<answer>nope</answer>")
    assert funcs[0](**kwargs)[0] == 0.0


def test_missing_columns_are_clear_errors():
    fn = make_thurstone_reward()
    with pytest.raises(ValueError, match="'task'"):
        fn(completions=["<answer>1</answer>"], solution=[1.0])
    with pytest.raises(ValueError, match="'solution'"):
        fn(completions=["<answer>1</answer>"], task=["iaa"])
    with pytest.raises(ValueError, match="unknown task"):
        fn(completions=["<answer>1</answer>"], task=["vqa"], solution=[1.0])
    with pytest.raises(ValueError, match="2 rows"):
        fn(completions=["<answer>1</answer>"], task=["iaa", "iaa"], solution=[1.0])
