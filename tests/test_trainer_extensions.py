"""Trainer extensions: extra loss terms, penalties, groups and frozen modules, targets, plateau, splits, reports."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from engine import models
from engine.data.subsample import class_counts, subsample
from engine.errors import UserInputError
from engine.models.export import model_source
from engine.models.heads import MultiHead, add_heads, replace_head
from engine.training import losses
from engine.training.config import TrainConfig
from engine.training.events import BatchEnd, Diverged, Done, Warned
from engine.training.objective import Objective
from engine.training.optimizers import Plateau
from engine.training.penalties import Penalties, penalized_parameters, proximal_l1_step
from engine.training.presets import preset
from engine.training.runs import load_run, save_run
from engine.training.targets import Mixer
from engine.training.trainer import Trainer, predict

PARITY = [0, 1] * 5  # digit -> odd/even, a second task on the same images


def _linear():
    return models.build("linear", in_channels=1, num_classes=10, image_size=8)


# ----------------------------------------------------------------------------- presets
def test_train_config_defaults_are_the_digits_recipe_and_shapes_warms_up():
    defaults = TrainConfig()
    assert {k: getattr(defaults, k) for k in preset("digits").to_dict()} == preset("digits").to_dict()
    shapes = TrainConfig.for_data("shapes", epochs=3)
    assert shapes.schedule == "one_cycle" and shapes.epochs == 3 and shapes.data == "shapes"
    assert TrainConfig.for_data("my_upload").schedule == "one_cycle"


# ----------------------------------------------------------------------------- extra loss terms
def test_penalty_terms_equal_their_formulas(digits):
    model = _linear()
    x, y = digits.train.x[:16], digits.train.y[:16]
    w, b = model.fc.weight, model.fc.bias
    data = F.cross_entropy(model(x), y)
    cases = [
        (Penalties(l2=0.1), {"l2": 0.05 * w.pow(2).sum()}),
        (Penalties(l2=0.1, include_all=True), {"l2": 0.05 * (w.pow(2).sum() + b.pow(2).sum())}),
        (Penalties(l1=0.01, l1_mode="subgradient"), {"l1": 0.01 * w.abs().sum()}),
        (Penalties(l1=0.01, l1_mode="proximal"), {}),  # a step after the optimizer's, not a loss term
        (Penalties(elastic=0.2, l1_ratio=0.3), {"elastic": 0.2 * (0.3 * w.abs().sum() + 0.35 * w.pow(2).sum())}),
    ]
    for penalties, expected in cases:
        objective = Objective(losses.build("cross_entropy"), model, heads={}, num_classes=10,
                              penalties=penalties, device=torch.device("cpu"))
        _, terms = objective(model(x), y)
        assert set(terms) == {"data", *expected}, penalties
        torch.testing.assert_close(terms["data"], data)
        for name, value in expected.items():
            torch.testing.assert_close(terms[name], value)


def test_l2_in_the_loss_is_sgd_weight_decay(digits):
    x, y = digits.train.x[:32], digits.train.y[:32]
    ours, torchs = _linear(), _linear()
    objective = Objective(losses.build("cross_entropy"), ours, heads={}, num_classes=10,
                          penalties=Penalties(l2=0.3, include_all=True), device=torch.device("cpu"))
    _, terms = objective(ours(x), y)
    sum(terms.values()).backward()
    torch.optim.SGD(ours.parameters(), lr=0.1).step()
    F.cross_entropy(torchs(x), y).backward()
    torch.optim.SGD(torchs.parameters(), lr=0.1, weight_decay=0.3).step()
    for a, b in zip(ours.parameters(), torchs.parameters()):
        torch.testing.assert_close(a, b)


def test_penalties_leave_biases_and_norms_alone_by_default():
    model = models.build("tinyvgg", in_channels=1, num_classes=10, image_size=8, norm="batch")
    chosen = {id(p) for p in penalized_parameters(model)}
    for name, param in model.named_parameters():
        assert (id(param) in chosen) == (param.ndim > 1), name
    assert len(penalized_parameters(model, include_all=True)) == len(list(model.parameters()))


def test_extra_head_terms_equal_weighted_losses_and_are_in_the_history(digits):
    config = TrainConfig(model="tinyvgg", epochs=2, heads={"parity": {"weight": 0.5, "targets": PARITY}}, l2=1e-3)
    trainer = Trainer(config, digits)
    x, y = trainer.train_split.x[:16], trainer.train_split.y[:16]
    model = trainer.model.train()
    output = model(x)
    assert set(output) == {"logits", "parity"} and output["parity"].shape == (16, 2)
    _, terms = trainer.objective(output, y)
    torch.testing.assert_close(terms["data"], F.cross_entropy(output["logits"], y))
    torch.testing.assert_close(terms["head_parity"], 0.5 * F.cross_entropy(output["parity"], y % 2))
    assert model.eval()(x).shape == (16, 10)  # eval mode: the main scores alone
    trainer.fit()
    history = trainer.history
    assert set(history.terms) == {"data", "head_parity", "l2"}
    assert all(len(v) == 2 for v in history.terms.values())
    assert history.train_loss == history.terms["data"]


@pytest.mark.parametrize("bad", [{"parity": {"weight": -1}}, {"parity": {"targets": [0, 1]}},
                                 {"parity": {"lambda": 1}}, {"logits": {}}])
def test_bad_heads_raise_user_input_error(digits, bad):
    with pytest.raises(UserInputError, match="head"):
        Trainer(TrainConfig(model="tinyvgg", epochs=1, heads=bad), digits)


# ----------------------------------------------------------------------------- L1: proximal vs subgradient
def test_proximal_step_is_soft_thresholding():
    layer = torch.nn.Linear(4, 3)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -0.02, 0.0, 0.2], [-0.3, 0.01, 0.04, -0.05], [1, -1, 0.03, -0.03]]))
    before = layer.weight.detach().clone()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    proximal_l1_step(optimizer, [layer.weight], 0.3)  # threshold η·λ = 0.03
    expected = before.sign() * (before.abs() - 0.03).clamp_min(0)
    torch.testing.assert_close(layer.weight, expected)
    assert (layer.weight == 0).sum() == 5  # |w| ≤ 0.03 became exactly 0


def test_proximal_l1_reaches_exact_zeros_and_subgradient_does_not(digits):
    base = dict(model="linear", optimizer="sgd", lr=0.1, epochs=3, l1=0.01)
    prox = Trainer(TrainConfig(**base, l1_mode="proximal"), digits).fit()
    sub = Trainer(TrainConfig(**base, l1_mode="subgradient"), digits).fit()
    weight = prox.model.fc.weight
    assert (weight == 0).float().mean() > 0.1
    assert prox.history.zero_fraction[-1] == pytest.approx((weight.abs() < 1e-6).float().mean().item())
    assert (sub.model.fc.weight == 0).float().mean() < 0.05
    assert sub.history.zero_fraction[-1] < 0.05
    assert prox.history.weight_norm[-1] == pytest.approx(weight.norm().item(), rel=1e-5)
    assert "l1" in sub.history.terms and "l1" not in prox.history.terms


# ----------------------------------------------------------------------------- groups, frozen modules, stages
def test_frozen_module_and_its_batchnorm_statistics_stay_bit_identical(digits):
    config = TrainConfig(model="tinyvgg", model_options={"norm": "batch"}, epochs=1, freeze=["block1"])
    trainer = Trainer(config, digits)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    after = trainer.model.state_dict()
    block1 = [k for k in before if k.startswith("block1.")]
    assert any("running_mean" in k for k in block1)
    for key in block1:
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["block2.0.weight"], after["block2.0.weight"])
    assert not torch.equal(before["block2.1.running_mean"], after["block2.1.running_mean"])
    assert all(p.requires_grad for p in trainer.model.parameters())  # the caller's flags are back


def test_group_learning_rates_follow_the_prefixes(digits):
    trainer = Trainer(TrainConfig(model="tinyvgg", epochs=1, lr=0.01, lr_factors={"fc": 10, "block1.0": 0.5}), digits)
    rates = {}
    for group in trainer.optimizer.param_groups:
        for param in group["params"]:
            rates[next(n for n, p in trainer.model.named_parameters() if p is param)] = group["lr"]
    assert rates["fc.weight"] == pytest.approx(0.1) and rates["block1.0.bias"] == pytest.approx(0.005)
    assert rates["block1.3.weight"] == pytest.approx(0.01) and rates["block2.0.weight"] == pytest.approx(0.01)


def test_stages_unfreeze_between_epochs(digits):
    stages = [{"epochs": 1, "freeze": ["block1", "block2"]}, {"epochs": 1, "lr_factors": {"block1": 0.1}}]
    trainer = Trainer(TrainConfig(model="tinyvgg", epochs=2, lr=0.01, stages=stages, snapshots=True), digits)
    trainer.fit()
    initial, first, second = trainer.history.snapshots
    assert torch.equal(initial["block1.0.weight"], first["block1.0.weight"])
    assert not torch.equal(initial["fc.weight"], first["fc.weight"])
    assert not torch.equal(first["block1.0.weight"], second["block1.0.weight"])
    lrs = sorted(group["lr"] for group in trainer.optimizer.param_groups)
    assert lrs == pytest.approx([0.001, 0.01])
    with pytest.raises(UserInputError, match="add up"):
        Trainer(TrainConfig(model="tinyvgg", epochs=3, stages=stages), digits)
    with pytest.raises(UserInputError, match="no module"):
        Trainer(TrainConfig(model="tinyvgg", epochs=1, freeze=["blockk"]), digits)


# ----------------------------------------------------------------------------- targets
def test_soft_target_cross_entropy_equals_its_formula():
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    probs = torch.softmax(torch.randn(6, 4, generator=torch.Generator().manual_seed(1)), 1)
    expected = -(probs * logits.log_softmax(1)).sum(1).mean()
    torch.testing.assert_close(losses.build("cross_entropy")(logits, probs), expected)
    torch.testing.assert_close(F.cross_entropy(logits, probs), expected)


def test_training_on_probability_targets_reports_argmax_accuracy(digits):
    soft = dataclasses.replace(digits, train=dataclasses.replace(
        digits.train, y=F.one_hot(digits.train.y, 10).float() * 0.9 + 0.01))
    trainer = Trainer(TrainConfig(model="linear", epochs=2, optimizer="sgd", lr=0.1), soft)
    trainer.fit()
    with torch.no_grad():
        predicted = trainer.model.eval()(digits.train.x).argmax(1)
    assert 0.5 < trainer.history.train_acc[-1] <= 1
    assert trainer.history.test_acc > 0.8
    assert (predicted == digits.train.y).float().mean() > 0.8
    with pytest.raises(UserInputError, match="cross_entropy"):
        Trainer(TrainConfig(model="linear", epochs=1, loss="mse"), soft)


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixing_targets_match_the_mixed_pixels(kind):
    x = torch.arange(8.0)[:, None, None, None].expand(8, 1, 16, 16).contiguous()  # image i is all i
    y = torch.arange(8)
    mixed, target = Mixer(kind, alpha=1.0, num_classes=8, seed=3)(x, y, torch.Generator().manual_seed(0))
    torch.testing.assert_close(target.sum(1), torch.ones(8))
    for i in range(8):
        own = target[i, i]
        if kind == "cutmix" and own < 1:
            share = (mixed[i] == i).float().mean()  # pixels still from image i
            assert share.item() == pytest.approx(own.item())
        others = target[i].clone()
        others[i] = -1
        partner = int(others.argmax()) if own < 1 else i  # an image mixed with itself keeps its label
        expected = own * i + (1 - own) * partner  # MixUp blends, CutMix pastes: the mean is the same
        torch.testing.assert_close(mixed[i].mean(), expected.float())


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_trainer_trains_with_mixing(digits, kind):
    run = Trainer(TrainConfig(model="linear", epochs=3, optimizer="sgd", lr=0.1, mixing=kind), digits).fit()
    assert run.history.test_acc > 0.7 and 0 <= run.history.train_acc[-1] <= 1


# ----------------------------------------------------------------------------- plateau
def test_plateau_divides_after_patience_stalled_epochs():
    plateau = Plateau(patience=2)
    reductions = [plateau.step(v) for v in [1.0, 0.9, 0.95, 0.92, 0.91, 0.8, 0.85, 0.86]]
    assert reductions == [False, False, False, True, False, False, False, True]
    assert plateau.scale == pytest.approx(0.01)


def test_reduce_on_plateau_schedule_follows_the_validation_loss(digits):
    config = TrainConfig(model="mlp", optimizer="sgd", lr=0.5, epochs=8, schedule="reduce_on_plateau",
                         plateau_patience=1)
    history = Trainer(config, digits).fit().history
    expected, best, stale, lr = [], math.inf, 0, 0.5
    for val_loss in history.val_loss:
        expected.append(lr)
        if val_loss < best * (1 - 1e-4):
            best, stale = val_loss, 0
        else:
            stale += 1
            if stale >= 1:
                lr, stale = lr * 0.1, 0
    assert history.lr == pytest.approx(expected)
    assert min(history.lr) < 0.5  # the validation loss of this lr does stall


# ----------------------------------------------------------------------------- splits
class _Untouchable:
    """A test split that fails the test when anything reads it."""

    def __getattr__(self, name):
        raise AssertionError(f"the test split was read ({name})")

    def __len__(self):
        raise AssertionError("the test split was read (len)")


def test_a_run_without_test_split_never_reads_it(digits):
    sealed = dataclasses.replace(digits, test=_Untouchable())
    trainer = Trainer(TrainConfig(model="linear", epochs=2, evaluate_test=False), sealed)
    assert trainer.estimate_seconds() > 0
    events = list(trainer.run())
    assert isinstance(events[-1], Done) and events[-1].test_acc is None and trainer.history.val_acc[-1] > 0.5
    with pytest.raises(AssertionError, match="test split was read"):
        Trainer(TrainConfig(model="linear", epochs=1), sealed)


def test_subsample_per_class_counts_and_imbalance(digits):
    few = subsample(digits, per_class=5, seed=1)
    assert class_counts(few.train.y, 10) == [5] * 10
    assert few.val is digits.val and few.test is digits.test
    torch.testing.assert_close(torch.tensor(few.mean), few.train.x.mean(dim=(0, 2, 3)))
    again = subsample(digits, per_class=5, seed=1)
    assert torch.equal(few.train.x, again.train.x)
    assert not torch.equal(few.train.y, subsample(digits, per_class=5, seed=2).train.y)
    tail = subsample(digits, per_class=100, imbalance_ratio=10, seed=0)
    counts = class_counts(tail.train.y, 10)
    assert counts[0] == 100 and counts[-1] == 10
    assert counts == [round(100 * 10 ** (-c / 9)) for c in range(10)]
    assert class_counts(subsample(digits, counts=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).train.y, 10) == list(range(1, 11))
    for bad in (dict(per_class=0), dict(per_class=10_000), dict(counts=[1, 2]), dict(imbalance_ratio=0.5), {}):
        with pytest.raises(UserInputError):
            subsample(digits, **bad)


# ----------------------------------------------------------------------------- reports, divergence, warnings
def test_batch_events_arrive_in_order_every_n_steps(digits):
    trainer = Trainer(TrainConfig(model="linear", epochs=2, batch_size=16, report_every=7), digits)
    events = list(trainer.run())
    steps = [e.step for e in events if isinstance(e, BatchEnd)]
    per_epoch = trainer.steps_per_epoch
    assert steps == sorted(set(steps))
    assert {per_epoch, 2 * per_epoch, 1} <= set(steps)
    assert all(b - a <= 7 for a, b in zip(steps, steps[1:]))
    kinds = [e.kind for e in events]
    assert kinds.index("epoch") > kinds.index("batch") and kinds[-1] == "done"


def test_divergence_is_caught_at_its_step_whatever_the_report_interval(digits):
    def diverged_step(every):
        config = TrainConfig(model="mlp", optimizer="sgd", lr=10.0, epochs=5, report_every=every)
        return next(e for e in Trainer(config, digits).run() if isinstance(e, Diverged))

    exact, sparse = diverged_step(1), diverged_step(10)
    assert sparse.step == exact.step and sparse.loss == exact.loss


def test_dead_relus_at_chance_say_so(digits):
    model = models.build("tinyvgg", in_channels=1, num_classes=10, image_size=8, mean=digits.mean, std=digits.std)
    with torch.no_grad():
        for module in model.block1:
            if isinstance(module, torch.nn.Conv2d):
                module.bias.fill_(-100.0)  # every pre-activation negative: the ReLUs never fire
    trainer = Trainer(TrainConfig(model="tinyvgg", epochs=3), digits, model=model)
    events = list(trainer.run())
    warned = [e for e in events if isinstance(e, Warned)]
    assert len(warned) == 1 and warned[0].epoch == 2
    assert "every ReLU in block1 is dead: try a lower learning rate or a warm-up" in warned[0].message
    assert trainer.history.warnings == [warned[0].message]
    healthy = list(Trainer(TrainConfig(model="tinyvgg", epochs=2), digits).run())
    assert not any(isinstance(e, Warned) for e in healthy)


# ----------------------------------------------------------------------------- several heads: save, load, export
def test_two_head_run_saves_loads_and_predicts(digits):
    config = TrainConfig(model="tinyvgg", epochs=1, heads={"parity": {"weight": 0.3, "targets": PARITY}})
    trainer = Trainer(config, digits)
    run = trainer.fit()
    assert isinstance(run.model, MultiHead)
    loaded = load_run(save_run(run))
    assert isinstance(loaded.model, MultiHead) and loaded.model.heads == ("parity",)
    x = digits.test.x[:32]
    torch.testing.assert_close(predict(loaded.model, x), predict(run.model, x))
    loaded.model.train()
    run.model.train()
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x)["parity"], run.model(x)["parity"])
    source = model_source(loaded.model.eval(), loaded.model_config, train_config=run.config)
    namespace: dict = {}
    exec(compile(source, "exported.py", "exec"), namespace)  # noqa: S102 - our own generated code
    rebuilt = namespace["build_model"]()
    rebuilt.load_state_dict(loaded.model.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x), loaded.model.eval()(x))


def test_new_head_and_extra_heads_keep_the_source_networks_names(digits):
    source = models.build("tinyvgg", in_channels=1, num_classes=10, image_size=8)
    five = replace_head(source, 5)
    assert five.fc.out_features == 5 and five.block1 is source.block1
    heads = add_heads(source, {"a": 3, "b": 4})
    with pytest.raises(UserInputError, match="called"):
        add_heads(source, {"fc": 3})
    heads.train()
    out = heads(digits.train.x[:2])
    assert {k: v.shape[1] for k, v in out.items()} == {"logits": 10, "a": 3, "b": 4}
    heads.load_state_dict({**source.state_dict(), **{k: v for k, v in heads.state_dict().items()
                                                     if k.split(".")[0] in ("a", "b")}})


# ----------------------------------------------------------------------------- the Train Lab reads the same table
def test_train_lab_switches_to_the_data_sets_recipe():
    from tests.apptest_helpers import assert_no_exception, run_page

    at = run_page("app_pages/start/train_lab.py", timeout=180)
    assert at.selectbox(key="train.schedule").value == preset("digits").schedule
    at.selectbox(key="train.data").set_value("shapes").run(timeout=180)
    assert_no_exception(at, "after choosing shapes")
    shapes = preset("shapes")
    assert at.selectbox(key="train.schedule").value == shapes.schedule == "one_cycle"
    assert at.number_input(key="train.epochs").value == shapes.epochs
    assert at.number_input(key="train.batch_size").value == shapes.batch_size
