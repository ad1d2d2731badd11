"""Multi-task learning: shapes' extra labels, label sets through splits, the weighted loss, the experiment."""

import time

import pytest
import torch
import torch.nn.functional as F

from engine.data.sets import relabel
from engine.data.shapes import EXTRA_LABELS, SHAPE_CLASSES, SIZE_SPLIT, render_labelled_shapes, render_shapes
from engine.data.subsample import subsample
from engine.errors import UserInputError
from engine.models.heads import MAIN
from engine.training import multitask
from engine.training.config import TrainConfig
from engine.training.runs import load_run, save_run
from engine.training.trainer import Trainer


@pytest.fixture(scope="module")
def tiny_shapes(small_shapes):
    return subsample(small_shapes, per_class=6, seed=0)  # 48 training images of 16×16


def _config(**overrides):
    settings = dict(data="shapes", model="tinyvgg", model_options={"width": 4}, epochs=1, batch_size=16)
    return TrainConfig(**{**settings, **overrides})


# ----------------------------------------------------------------------------- the extra labels of shapes
def test_shape_labels_and_images_are_unchanged_and_extra_labels_deterministic():
    x, y = render_shapes(300, seed=3)
    x2, y2, extra = render_labelled_shapes(300, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    # pinned: integer draws of torch's CPU generator are the same on every machine
    assert y[:12].tolist() == [6, 0, 3, 1, 4, 5, 4, 6, 1, 4, 6, 7]
    again = render_labelled_shapes(300, seed=3)[2]
    assert all(torch.equal(extra[name], again[name]) for name in EXTRA_LABELS)
    assert not torch.equal(extra["colour"], render_labelled_shapes(300, seed=4)[2]["colour"])
    assert set(extra) == set(EXTRA_LABELS) == {"colour", "size"}
    assert extra["colour"].dtype == torch.int64 and set(extra["colour"].tolist()) == {0, 1, 2}


def test_extra_labels_are_what_the_image_shows():
    x, y, extra = render_labelled_shapes(400, seed=0, size=32)
    # size: a large shape covers more pixels than a small one of the same class, on average
    # the border's median is background for every shape that stays inside; a 3×3 mean tames the
    # pixel noise (std up to 0.08) that a single corner pixel or an unsmoothed threshold would count
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, :, 0], x[:, :, :, -1]], 2)
    background = border.median(2).values
    smooth = F.avg_pool2d(x, 3, stride=1, padding=1)
    covered = ((smooth - background[:, :, None, None]).abs().amax(1) > 0.1).float().mean((1, 2))
    for label in range(len(SHAPE_CLASSES)):
        mine = y == label
        small, large = covered[mine & (extra["size"] == 0)], covered[mine & (extra["size"] == 1)]
        assert large.mean() > small.mean() * 1.3, SHAPE_CLASSES[label]
    assert 0.45 < SIZE_SPLIT < 0.9


def test_extra_labels_are_independent_of_the_shape():
    _, y, extra = render_labelled_shapes(12000, seed=0, size=8)
    for name, names in EXTRA_LABELS.items():
        table = torch.zeros(len(SHAPE_CLASSES), len(names))
        table.index_put_((y, extra[name]), torch.ones(len(y)), accumulate=True)
        share = table / table.sum(1, keepdim=True)  # each shape's distribution of the other label
        assert (share - share.mean(0)).abs().max() < 0.05, name


# ----------------------------------------------------------------------------- label sets through the data
def test_label_sets_follow_their_images_through_splits_subsampling_and_relabel(small_shapes):
    _, _, extra = render_labelled_shapes(400, seed=0)
    assert small_shapes.label_names == {name: list(names) for name, names in EXTRA_LABELS.items()}
    total = sum(len(s.labels["colour"]) for s in (small_shapes.train, small_shapes.val, small_shapes.test))
    assert total == 400 and sorted(torch.cat([s.labels["size"] for s in (small_shapes.train, small_shapes.val,
                                                                           small_shapes.test)]).tolist()) == sorted(
        extra["size"].tolist())
    sub = subsample(small_shapes, per_class=5, seed=1)
    rows = {tuple(img.flatten()[:20].tolist()): i for i, img in enumerate(small_shapes.train.x)}
    for img, colour, size in zip(sub.train.x, sub.train.labels["colour"], sub.train.labels["size"]):
        i = rows[tuple(img.flatten()[:20].tolist())]
        assert colour == small_shapes.train.labels["colour"][i] and size == small_shapes.train.labels["size"][i]
    by_size = relabel(sub, "size")
    assert by_size.class_names == ["small", "large"] and torch.equal(by_size.train.y, sub.train.labels["size"])
    assert set(by_size.train.labels) == {"colour"} and set(by_size.label_names) == {"colour"}
    with pytest.raises(UserInputError, match="no label set 'shape'"):
        relabel(sub, "shape")


# ----------------------------------------------------------------------------- the weighted loss
def test_multitask_loss_is_the_weighted_sum(tiny_shapes):
    config = _config(main_weight=0.7, heads={"colour": {"weight": 0.4, "labels": "colour"}})
    trainer = Trainer(config, tiny_shapes)
    assert trainer.config.heads["colour"]["classes"] == 3  # filled in, so a saved run rebuilds alone
    split = trainer.train_split
    x, y, colour = split.x[:16], split.y[:16], split.labels["colour"][:16]
    output = trainer.model.train()(x)
    assert output["colour"].shape == (16, 3) and output[MAIN].shape == (16, 8)
    logits, terms = trainer.objective(output, y, {"colour": colour})
    shape_loss = -output[MAIN].log_softmax(1)[torch.arange(16), y].mean()  # cross-entropy by hand
    colour_loss = -output["colour"].log_softmax(1)[torch.arange(16), colour].mean()
    torch.testing.assert_close(terms["data"], shape_loss)
    torch.testing.assert_close(terms["head_colour"], 0.4 * colour_loss)
    torch.testing.assert_close(trainer.objective.total(terms), 0.7 * shape_loss + 0.4 * colour_loss)
    trainer.fit()
    assert set(trainer.history.terms) == {"data", "head_colour"}
    restored = load_run(save_run(trainer.to_run()))
    torch.testing.assert_close(restored.model.eval()(x[:4]), trainer.model.eval()(x[:4]))


def test_main_weight_one_leaves_the_loss_as_it_was(tiny_shapes):
    trainer = Trainer(_config(heads={"size": {"weight": 0.5, "labels": "size"}}), tiny_shapes)
    out = trainer.model.train()(trainer.train_split.x[:8])
    y, size = trainer.train_split.y[:8], trainer.train_split.labels["size"][:8]
    _, terms = trainer.objective(out, y, {"size": size})
    expected = F.cross_entropy(out[MAIN], y) + 0.5 * F.cross_entropy(out["size"], size)
    assert torch.equal(trainer.objective.total(terms), terms["data"] + terms["head_size"])
    torch.testing.assert_close(trainer.objective.total(terms), expected)


@pytest.mark.parametrize(("overrides", "match"), [
    ({"heads": {"c": {"labels": "texture"}}}, "does not have"),
    ({"heads": {"c": {"labels": "colour"}}, "mixing": "mixup"}, "mixes images"),
    ({"heads": {"c": {"labels": "colour", "weight": 0}}, "main_weight": 0.0}, "every loss weight is 0"),
    ({"main_weight": -1.0}, "main head's loss weight"),
    ({"heads": {"c": {"labels": "colour", "targets": [0, 1] * 4}}}, "not both")])
def test_bad_label_heads_are_user_errors(tiny_shapes, overrides, match):
    with pytest.raises(UserInputError, match=match):
        Trainer(_config(**overrides), tiny_shapes)


def test_a_set_without_label_sets_refuses_a_label_head(digits):
    with pytest.raises(UserInputError, match="its extra label sets: none"):
        Trainer(TrainConfig(epochs=1, heads={"c": {"labels": "colour"}}), digits)


# ----------------------------------------------------------------------------- the experiment
def test_task_scores_apply_each_head_to_the_shared_features(tiny_shapes):
    trainer = Trainer(_config(heads={"size": {"labels": "size"}}), tiny_shapes)
    model, x = trainer.model, tiny_shapes.val.x[:10]
    scores = multitask.task_scores(model, x, [MAIN, "size"])
    model.eval()
    with torch.no_grad():
        features = x
        for name, module in model.named_children():
            if name == "fc":
                break
            features = module(features)
        torch.testing.assert_close(scores["size"], model.size(features))
        torch.testing.assert_close(scores[MAIN], model(x))


def test_experiment_trains_three_nets_and_scores_every_task(tiny_shapes):
    nets = multitask.plan(_config(epochs=2), tiny_shapes, labels="size", main_weight=1.0, head_weight=0.5,
                          main_task="shape")
    assert [n.name for n in nets] == ["multi-task", "shape only", "size only"]
    assert nets[2].dataset.class_names == ["small", "large"]
    record, started = multitask.Record(), time.perf_counter()
    for event in multitask.train_multitask(nets=nets):
        record.add(event)
    wall = time.perf_counter() - started
    assert set(record.test_acc) == {"multi-task", "shape only", "size only"}
    # each net's own training time: the nets take turns, so their wall times would each be about the job's
    assert all(s > 0 for s in record.seconds.values()) and sum(record.seconds.values()) < wall
    assert set(record.test_acc["multi-task"]) == {"shape", "size"}
    assert set(record.curves("size")) == {"multi-task", "size only"} and len(record.curves("size")["size only"]) == 2
    assert record.params["multi-task"] < record.params["shape only"] + record.params["size only"]
    # the weighted training losses: λ₂ L₂ of the multi-task net is half the head's own mean loss
    assert all(v > 0 for v in record.weighted["multi-task"]["size"])
    # the single-task shape net and the multi-task net start from the same base (same seed)
    first = [Trainer(n.config, n.dataset).model for n in nets[:2]]
    torch.testing.assert_close(first[0].block1[0].weight, first[1].block1[0].weight)


def test_plan_refuses_a_missing_label_set(tiny_shapes):
    with pytest.raises(UserInputError, match="no label set"):
        multitask.plan(_config(), tiny_shapes, labels="texture")
