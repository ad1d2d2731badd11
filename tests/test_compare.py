"""CNN vs ViT engine: model costs, subsets, the time plan, and the data-size experiment as a stoppable generator."""

import dataclasses

import pytest

from engine.job_messages import Progress
from engine import models
from engine.errors import UserInputError
from engine.limits import MAX_TRAIN_SECONDS
from engine.training import compare
from engine.training.config import TrainConfig
from engine.training.trainer import Trainer, model_config_for

CNN = TrainConfig(data="digits", model="linear", optimizer="adamw", lr=3e-3, batch_size=64, epochs=1, seed=0)
VIT = dataclasses.replace(CNN, model="vit_tiny", model_options=dict(width=16, depth=2, heads=2))


def test_model_costs_count_parameters_and_the_vits_attention_products(digits):
    costs = compare.model_costs([CNN, VIT], digits)
    vit = models.build_from_config(model_config_for(VIT, digits))
    assert costs["vit_tiny"].params == sum(p.numel() for p in vit.parameters())
    assert costs["linear"].params == 64 * 10 + 10  # 8×8 pixels -> 10 classes, with biases
    assert costs["linear"].macs == 64 * 10
    layers = sum(row.macs for row in models.summary(vit, (1, 8, 8)))
    tokens = (8 // 2) ** 2 + 1  # 2×2 patches of an 8×8 digit, plus the class token
    assert costs["vit_tiny"].macs - layers == 2 * 2 * tokens**2 * 16  # depth 2 × (QKᵀ + A·V) × N² × D


def test_subset_size_keeps_one_image_per_class_and_refuses_bad_fractions(digits):
    n = len(digits.train)
    assert compare.subset_size(digits, 1.0) == n
    assert compare.subset_size(digits, 0.25) == round(0.25 * n)
    assert compare.subset_size(digits, 1e-4) == digits.num_classes
    with pytest.raises(UserInputError, match="fraction"):
        compare.subset_size(digits, 0.0)
    small = compare.subset(digits, 30)
    assert len(small.train) == 30 and len(small.test) == len(digits.test)
    assert (small.train.x == digits.train.x[:30]).all()


def test_plan_skips_done_points_and_scales_the_estimate_with_the_images(digits):
    n = len(digits.train)
    full = {"linear": 10.0, "vit_tiny": 100.0}
    quarter = compare.subset_size(digits, 0.25)
    plan = compare.plan_data_size([CNN, VIT], digits, fractions=[1.0, 0.25], full_seconds=full,
                                  done=[("vit_tiny", quarter)])
    assert [(t.config.model, t.images) for t in plan.trainings] == [("linear", quarter), ("linear", n), ("vit_tiny", n)]
    assert plan.seconds == pytest.approx(10.0 * quarter / n + 10.0 + 100.0)
    compare.check_plan(plan)


def test_plan_over_the_time_limit_is_refused_before_any_training(digits, monkeypatch):
    plan = compare.plan_data_size([CNN], digits, fractions=[1.0], full_seconds={"linear": MAX_TRAIN_SECONDS + 1.0})
    with pytest.raises(UserInputError, match=f"over the {MAX_TRAIN_SECONDS} s limit"):
        compare.check_plan(plan)
    monkeypatch.setattr(compare, "Trainer", None)  # nothing may be trained
    with pytest.raises(UserInputError, match="limit"):
        next(compare.data_size_experiment(plan, digits))


def _plan(digits, fractions=(0.05, 0.1)):
    return compare.plan_data_size([CNN, VIT], digits, fractions=fractions, full_seconds={"linear": 1.0, "vit_tiny": 4.0})


def test_experiment_results_equal_training_each_subset_alone(digits):
    plan = _plan(digits)
    events = list(compare.data_size_experiment(plan, digits))
    results = [e for e in events if isinstance(e, compare.SizeResult)]
    assert [(r.model, r.images) for r in results] == [(t.config.model, t.images) for t in plan.trainings]
    first = plan.trainings[0]  # 5 % of digits is fewer images than the batch of 64: the batch shrinks
    config = dataclasses.replace(first.config, batch_size=min(64, first.images))
    alone = Trainer(config, compare.subset(digits, first.images)).fit()
    assert results[0].test_acc == alone.history.test_acc
    progress = [e.fraction for e in events if isinstance(e, Progress)]
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)


def test_experiment_stops_when_should_stop_says_so(digits):
    found = []
    for event in compare.data_size_experiment(_plan(digits), digits, should_stop=lambda: len(found) >= 1):
        if isinstance(event, compare.SizeResult):
            found.append(event)
    assert len(found) == 1


def test_experiment_trains_nothing_more_once_the_consumer_stops(digits, monkeypatch):
    started = []

    class Counting(Trainer):
        def __init__(self, *args, **kwargs):
            started.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(compare, "Trainer", Counting)
    events = compare.data_size_experiment(_plan(digits), digits)
    next(e for e in events if isinstance(e, compare.SizeResult))
    events.close()
    assert len(started) == 1
