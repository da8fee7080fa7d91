import dataclasses

import pytest
import torch

import yoho.train as train
from yoho.profiles import get_profile, register_profile


def test_loader_workers_auto_leaves_one_core_to_training(monkeypatch):
    monkeypatch.setattr(train, "available_cores", lambda: 16)
    assert train.loader_workers(-1) == 15
    monkeypatch.setattr(train, "available_cores", lambda: 64)
    assert train.loader_workers(-1) == 16
    monkeypatch.setattr(train, "available_cores", lambda: 1)
    assert train.loader_workers(-1) == 0
    assert train.loader_workers(4) == 4 and train.loader_workers(0) == 0


@pytest.mark.parametrize("averaging", [{"ema_decay": 0.8}, {"average_last": 5}])
def test_the_returned_network_is_the_average_of_the_steps_weights(
    averaging, monkeypatch, synthetic, synthetic_annotation
):
    # The weights after each step are recorded through the progress callback and the average
    # recomputed by hand: exponential e_1 = w_1, e_t = d·e_{t-1} + (1 − d)·w_t over every step,
    # or the plain mean of the last n steps' weights. The returned network must be that
    # average (BatchNorm statistics included), not the last step's weights.
    built = []
    real_build = train.build_model

    def build_and_keep(*args, **kwargs):
        built.append(real_build(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(train, "build_model", build_and_keep)
    prof = dataclasses.replace(get_profile("tiny"), **averaging)
    steps = []

    def record(step, total, loss):
        state = built[0].state_dict()
        steps.append({k: v.detach().clone() for k, v in state.items() if v.is_floating_point()})

    image, _ = synthetic
    result = train.train(image, synthetic_annotation, prof, seed=0, progress=record)
    assert len(steps) == prof.total_steps == 12
    if "ema_decay" in averaging:
        decay = averaging["ema_decay"]
        expected = dict(steps[0])
        for weights in steps[1:]:
            expected = {k: decay * expected[k] + (1 - decay) * weights[k] for k in expected}
    else:
        last = steps[-averaging["average_last"] :]
        expected = {k: sum(w[k] for w in last) / len(last) for k in last[0]}
    returned = result.model.state_dict()
    assert result.model is not built[0]
    for key, value in expected.items():
        torch.testing.assert_close(returned[key], value, rtol=1e-5, atol=1e-6)
    # ... and it is not the last step's network.
    moved = max(float((returned[k] - steps[-1][k]).abs().max()) for k in expected)
    assert moved > 1e-4


def test_a_profile_cannot_average_two_ways(synthetic, synthetic_annotation):
    prof = dataclasses.replace(get_profile("tiny"), name="both", ema_decay=0.9, average_last=3)
    with pytest.raises(ValueError, match="exclude each other"):
        register_profile(prof)
    image, _ = synthetic
    with pytest.raises(ValueError, match="exclude each other"):
        train.train(image, synthetic_annotation, prof)
