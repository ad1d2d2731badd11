"""Transfer learning: sources and their layers, features against the network's own outputs, the probe against
scikit-learn, freezing (bit-identical weights, BatchNorm statistics), per-group learning rates, transfer
beating pixels on a bundled target, the few-shot curve, strategies, the CLI and bad input."""

import json

import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from engine.job_messages import Progress
from engine import data, models
from engine.__main__ import main
from engine.errors import UserInputError
from engine.training import probe, sources, strategies, transfer
from engine.training.config import TrainConfig
from engine.training.runs import Run, save_run
from engine.training.trainer import Trainer
from engine.training.transfer import FineTune
from tests.test_pretrained import _write_random_weights


@pytest.fixture(scope="module")
def shapes_run():
    """Tiny VGG with BatchNorm on 1,120 training shapes, 4 epochs (~4 s): weak (≈ 55 %), yet it transfers."""
    shapes = data.load("shapes", seed=0, num_images=1600)
    return Trainer(TrainConfig.for_data("shapes", model_options={"norm": "batch"}, epochs=4, seed=0), shapes).fit()


@pytest.fixture(scope="module")
def source(shapes_run):
    return sources.from_run(shapes_run)


@pytest.fixture(scope="module")
def faces():
    return data.load("faces", seed=0)


def _random_source(**options) -> sources.Source:
    model = models.build("tinyvgg", in_channels=3, num_classes=8, image_size=32, seed=0, **options)
    config = models.ModelConfig("tinyvgg", 3, 8, 32, options=options)
    return sources.from_run(Run("random tinyvgg", {}, config, list("abcdefgh"), "nothing", model))


# ----------------------------------------------------------------------------- sources
def test_a_run_offers_each_stage_and_freezes_by_block(source):
    assert [(l.name, l.shape) for l in source.layers] == [("block1", (16, 16, 16)), ("block2", (16, 8, 8))]
    assert source.units == ("block1", "block2", "fc") and source.head == "fc"
    assert (source.channels, source.image_size) == (3, 32)
    lenet = sources.from_run(Run("l", {}, models.ModelConfig("lenet5", 3, 8, 32), list("abcdefgh"), "x",
                                 models.build("lenet5", in_channels=3, num_classes=8, image_size=32)))
    assert [l.name for l in lenet.layers] == ["act1", "pool1", "act2", "pool2", sources.HEAD_INPUT]  # fc1, fc2 follow
    linear = Run("lin", {}, models.ModelConfig("linear", 1, 10, 8), list("0123456789"), "x",
                 models.build("linear", in_channels=1, num_classes=10, image_size=8))
    with pytest.raises(UserInputError, match="no layers before its classifier"):
        sources.from_run(linear)


@pytest.mark.parametrize("name", [n for n in models.names() if n != "linear"])
def test_every_trainable_model_is_a_source_or_says_why_not(name):
    model = models.build(name, in_channels=3, num_classes=8, image_size=32, seed=0)
    run = Run(name, {}, models.ModelConfig(name, 3, 8, 32), list("abcdefgh"), "shapes", model)
    try:
        source = sources.from_run(run)
    except UserInputError as error:  # an auxiliary classifier after the main one (inception_mini)
        assert "is not its last layer with weights" in str(error)
        return
    assert source.layers and source.units[-1] == source.head
    x = torch.rand(2, 3, 32, 32)
    feats = probe.features(source, x, probe.feature_options(source))
    assert all(f.shape == (2, feature.width) for feature, f in feats.items())
    with torch.no_grad():
        assert sources.with_new_head(source, 5).eval()(x).shape == (2, 5)


def test_a_cached_pretrained_network_is_a_source_at_a_smaller_input(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(UserInputError, match="resnet18-f37072fd.pth"):
        sources.from_pretrained("resnet18", image_size=64)  # not cached: the registry's offline message
    _write_random_weights("resnet18")
    net = sources.from_pretrained("resnet18", image_size=64)
    assert [l.name for l in net.layers] == ["net.relu", "net.layer1", "net.layer2", "net.layer3", "net.layer4"]
    assert net.layers[-1].shape == (512, 2, 2) and net.blocks[-1] == "net.layer4" and net.head == "net.fc"
    tuned = sources.with_new_head(net, 3, seed=0)
    assert tuned.net.fc.out_features == 3 and net.model.net.fc.out_features == 1000  # the source is untouched
    torch.testing.assert_close(tuned.net.layer4[0].conv1.weight, net.model.net.layer4[0].conv1.weight)
    assert sources.macs_per_image(net) < 0.2e9  # ≈ 1.8 GMACs at 224, (64/224)² of that here
    with pytest.raises(UserInputError, match="input sizes"):
        sources.from_pretrained("resnet18", image_size=300)
    assert sources.pretrained_sizes("vit_b_16") == [224]


def test_fitting_the_target_converts_channels_and_size_and_says_so(source, digits):
    fitted, notes = sources.fit_to_source(digits, source)
    assert fitted.train.x.shape[1:] == (3, 32, 32) and fitted.channels == 3 and len(notes) == 2
    assert "gray repeated into 3 channels" in notes[0] and "resized from 8×8 to 32×32" in notes[1]
    torch.testing.assert_close(fitted.test.x[:, 0], fitted.test.x[:, 2])
    assert sources.fit_to_source(fitted, source) == (fitted, [])


# ----------------------------------------------------------------------------- features and the probe
def test_features_are_the_stage_outputs_pooled_and_cached(source, digits):
    x = sources.fit_to_source(digits, source)[0].test.x[:20]
    options = {f.label: f for f in probe.feature_options(source)}
    assert set(options) == {f"block{b} / {p}" for b in (1, 2) for p in ("avg1", "avg2", "avg4", "flat")}
    wanted = [options["block2 / avg2"], options["block1 / flat"]]
    got = probe.features(source, x, wanted)
    with torch.no_grad():
        block1 = source.model.block1(source.model.normalize(x))
        block2 = source.model.block2(block1)
    torch.testing.assert_close(got[wanted[0]], F.adaptive_avg_pool2d(block2, 2).flatten(1))
    torch.testing.assert_close(got[wanted[1]], block1.flatten(1))
    assert probe.features(source, x, wanted)[wanted[0]] is got[wanted[0]]  # the second call is the cache's


def test_the_probe_is_a_standardized_scikit_learn_pipeline(digits):
    x, y = digits.train.x.flatten(1)[:300], digits.train.y[:300]
    pipe = probe.fit_probe(x, y, c=0.5)
    reference = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=2000, random_state=0))
    reference.fit(x.numpy(), y.numpy())
    test = digits.test.x.flatten(1)
    assert (pipe.predict(test.numpy()) == reference.predict(test.numpy())).all()
    assert probe.score(probe.fit_probe(x, y, classifier="svm"), test, digits.test.y) > 0.85
    with pytest.raises(UserInputError, match="unknown linear classifier"):
        probe.fit_probe(x, y, classifier="knn")


def test_the_pictures_of_the_feature_space(source, faces):
    space = probe.feature_space(source=source, target=faces, layer="block2", pooling="avg2", method="pca")
    assert space.pixels.points.shape == space.features.points.shape == (len(faces.train), 2)
    assert 0 < space.features.explained <= 1
    tsne = probe.embed(torch.randn(400, 8), torch.zeros(400).long(), method="tsne", max_points=100)
    assert tsne.points.shape == (100, 2) and tsne.explained is None


# ----------------------------------------------------------------------------- freezing and learning rates
def _weights(model, prefix):
    return {k: v.clone() for k, v in model.state_dict().items() if k.startswith(prefix)}


def test_frozen_layers_stay_bit_identical_and_their_batchnorm_statistics_too(source, faces):
    target = sources.fit_to_source(faces, source)[0]
    trainer = transfer.fine_tuner(source, target, FineTune(head_epochs=1, epochs=0, seed=0))
    before = _weights(trainer.model, "block")
    trainer.fit()
    after = _weights(trainer.model, "block")
    assert any(k.endswith("running_mean") for k in before)
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and running statistics
    assert not torch.equal(trainer.model.fc.weight, sources.with_new_head(source, 2, seed=0).fc.weight)
    assert transfer.bn_shift(source, trainer.model, source.blocks) == 0.0
    # Left in train mode, the "frozen" layers normalize with batch statistics and their running means drift.
    drifting = transfer.fine_tuner(source, target, FineTune(head_epochs=1, epochs=0, frozen_bn="train", seed=0))
    drifting.fit()
    moved = _weights(drifting.model, "block")
    weights = [k for k in before if k.endswith("weight") and "running" not in k]
    assert all(torch.equal(before[k], moved[k]) for k in weights)
    assert not torch.equal(before["block1.1.running_mean"], moved["block1.1.running_mean"])
    assert transfer.bn_shift(source, drifting.model, source.blocks) > 0.01


def test_unfrozen_blocks_train_at_their_own_learning_rate(source, faces):
    target = sources.fit_to_source(faces, source)[0]
    spec = FineTune(head_epochs=1, epochs=1, unfreeze=1, lr=1e-3, base_lr_factor=0.1, seed=0)
    config = transfer.fine_tune_config(source, target, spec)
    assert config.stages == [{"epochs": 1, "freeze": ["block1", "block2"]},
                             {"epochs": 1, "freeze": ["block1"], "lr_factors": {"block2": 0.1}}]
    trainer = transfer.fine_tuner(source, target, spec)
    before = _weights(trainer.model, "block")
    trainer.fit()
    lrs = {key: group["lr"] for key, group in zip(trainer.groups.keys, trainer.optimizer.param_groups)}
    assert lrs == pytest.approx({"": 1e-3, "block2": 1e-4})
    after = _weights(trainer.model, "block")
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("block1."))
    assert not torch.equal(before["block2.0.weight"], after["block2.0.weight"])


def test_a_fine_tuning_in_which_nothing_learns_is_refused(source, faces):
    target = sources.fit_to_source(faces, source)[0]
    with pytest.raises(UserInputError, match="nothing would learn: every layer .* frozen and no head"):
        transfer.fine_tune_config(source, target, FineTune(train_head=False, unfreeze=0))
    with pytest.raises(UserInputError, match="unfreeze must be between 0 and the 2 blocks"):
        transfer.fine_tune_config(source, target, FineTune(unfreeze=3))


# ----------------------------------------------------------------------------- transfer pays on faces
def test_shapes_features_beat_pixels_and_random_features_on_faces_with_5_per_class(source, faces):
    # Measured (seeds 0–3): pixels 58–90 %, a random Tiny VGG's features 82–92 %, these 95–100 %.
    methods = ("pixels_linear", "features_linear", "head_only")
    runs = {name: [] for name in ("trained", "random")}
    for seed in range(3):
        for name, src in (("trained", source), ("random", _random_source(norm="batch"))):
            *_, report = transfer.compare(source=src, target=faces, per_class=5, epochs=3, seed=seed, methods=methods)
            runs[name].append(report.accuracies)
    mean = {name: {m: sum(r[m] for r in rows) / len(rows) for m in methods} for name, rows in runs.items()}
    assert mean["trained"]["features_linear"] >= mean["trained"]["pixels_linear"] + 0.1
    assert mean["trained"]["head_only"] >= mean["trained"]["pixels_linear"] + 0.1
    assert mean["trained"]["features_linear"] >= mean["random"]["features_linear"] + 0.05


def test_the_few_shot_curve_cuts_sizes_to_what_exists_and_says_so(source, faces):
    events = list(transfer.few_shot_curve(source=source, target=faces, shots=(2, 500), epochs=1,
                                          methods=("pixels_linear", "features_linear")))
    notes = [e.message for e in events if isinstance(e, transfer.Note)]
    assert any("only 70 training images" in n and "using 70 per class instead of 500" in n for n in notes)
    assert sum("gray repeated" in n for n in notes) == 1
    points = {(p.method, p.per_class): p for p in events if isinstance(p, transfer.CurvePoint)}
    assert set(points) == {(m, k) for m in ("pixels_linear", "features_linear") for k in (2, 70)}
    assert points[("features_linear", 2)].images == 4 and points[("features_linear", 2)].detail
    progress = [e.fraction for e in events if isinstance(e, Progress)]
    assert progress == sorted(progress) and progress[-1] == 1.0


def test_strategies_fill_the_two_by_two_table_and_run(source, faces):
    assert [s.name for _, s in strategies.STRATEGIES.items()] == [
        "similar_little", "similar_much", "different_little", "different_much"]
    assert strategies.strategy_for(similar=False, much=True).advice == "Fine-tune many layers"
    *_, top = strategies.run_strategy(strategy="similar_little", source=source, target=faces, per_class=3)
    *_, early = strategies.run_strategy(strategy="different_little", source=source, target=faces, per_class=3)
    assert top.layer.startswith("block2") and early.layer.startswith("block1")
    *_, tuned = strategies.run_strategy(strategy="different_much", source=source, target=faces, per_class=3,
                                        epochs=1)
    assert set(tuned.accuracies) == {"pixels_linear", "fine_tuned"} and "top 2 of 2 blocks" in tuned.recipe


def test_a_fine_tuning_job_hands_back_a_run_that_saves(source, faces):
    events = list(transfer.fine_tune_job(source=source, target=faces, spec=FineTune(head_epochs=1, epochs=1),
                                         per_class=4))
    done = events[-1]
    assert isinstance(done, transfer.FineTuned) and len(done.history.epoch) == 2
    assert done.run is not None and done.run.model_config.num_classes == 2 and save_run(done.run)
    assert transfer.fine_tune_seconds(source, faces, FineTune(), 4) > 0


def test_scratch_is_the_same_architecture_with_other_weights(source, faces):
    target = sources.fit_to_source(faces, source)[0]
    fresh = sources.from_scratch(source, target, seed=1)
    assert [n for n, _ in fresh.named_parameters()] == [n for n, _ in source.model.named_parameters()]
    assert fresh.fc.out_features == 2 and not torch.equal(fresh.block1[0].weight, source.model.block1[0].weight)


# ----------------------------------------------------------------------------- the CLI
def test_cli_prints_the_five_accuracies_as_json(shapes_run, tmp_path, capsys):
    path = tmp_path / "shapes.pt"
    path.write_bytes(save_run(shapes_run))
    assert main(["transfer", "--source", str(path), "--target", "faces", "--per-class", "3", "--epochs", "1",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(transfer.METHODS) <= set(result) and all(0 <= result[m] <= 1 for m in transfer.METHODS)
    assert result["per_class"] == 3 and result["layer"].startswith("block") and result["seconds"] > 0


@pytest.mark.parametrize("args, message", [
    (["--source", "resnet18"], "resnet18-f37072fd.pth"),  # not cached: the registry's message and the way out
    (["--source", "nope.pt"], "must be a saved run file"),
    (["--source", "resnet18", "--per-class", "0"], "--per-class must be ≥ 1"),
    (["--source", "resnet18", "--per-class", "many"], "whole number ≥ 1 or 'all'"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert main(["transfer", "--target", "faces", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    if "pth" in message:
        assert "train a source here" in err


def test_a_pretrained_network_can_be_fine_tuned(tmp_path, monkeypatch, faces):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _write_random_weights("resnet18")
    net = sources.from_pretrained("resnet18", image_size=32)
    tiny = transfer.subset(sources.fit_to_source(faces, net)[0], 2, 0)
    trainer = transfer.fine_tuner(net, tiny, FineTune(head_epochs=1, epochs=1, unfreeze=1, batch_size=4))
    before = _weights(trainer.model, "net.layer3")
    trainer.fit()
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())
    assert trainer.history.test_acc is not None
