"""resnet_small's variants, the degradation experiment, the lesion study, path lengths and the `lesion` CLI."""

import itertools
import json
import math

import pytest
import torch
from torch import nn

from engine import models
from engine.__main__ import main
from engine.data.subsample import subsample
from engine.errors import UserInputError
from engine.models.export import model_source
from engine.models.resnet import ResidualBlock
from engine.training import residual
from engine.training.config import TrainConfig
from engine.training.events import EpochEnd
from engine.training.runs import save_run
from engine.training.trainer import Trainer

VARIANTS = [dict(), dict(skip=False), dict(block="bottleneck", depth=11), dict(preact=True), dict(se=True),
            dict(block="bottleneck", depth=20, preact=True, se=True, skip=False)]


def _build(seed=0, **options):
    return models.build("resnet_small", in_channels=3, num_classes=5, image_size=16, seed=seed, **options)


def _weighted_depth(model):
    """Convolutions and linear layers on the main path: the paper's depth (shortcuts and SE gates not counted)."""
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for name, m in model.named_modules()
               if ".shortcut" not in name and ".se." not in name)


@pytest.mark.parametrize("block, depths", [("basic", [8, 14, 20, 32]), ("bottleneck", [11, 20, 29])])
def test_depth_is_6n_plus_2_for_basic_and_9n_plus_2_for_bottleneck_blocks(block, depths):
    for depth in depths:
        for skip in (True, False):
            assert _weighted_depth(_build(depth=depth, block=block, skip=skip)) == depth


@pytest.mark.parametrize("options, message", [(dict(depth=11), "6n\\+2"), (dict(block="bottleneck", depth=8), "9n\\+2"),
                                              (dict(block="wide"), "basic, bottleneck"), (dict(se_reduction=0), "1…64")])
def test_bad_variant_options_are_refused_with_the_rule(options, message):
    with pytest.raises(UserInputError, match=message):
        _build(**options)


def _basic_params(c_in, w, n, classes, skip):
    """Hand count for a basic-block resnet_small with batch norm (2 parameters per channel)."""
    total, c = c_in * w * 9 + 2 * w, w  # stem
    for stage in range(3):
        out = w * 2**stage
        for i in range(n):
            total += c * out * 9 + 2 * out + out * out * 9 + 2 * out
            if skip and c != out:
                total += c * out + 2 * out  # 1×1 projection + its norm
            c = out
    return total + c * classes + classes


def _bottleneck_params(c_in, w, n, classes, skip, se_r=None):
    total, c = c_in * w * 9 + 2 * w, w
    for stage in range(3):
        mid = w * 2**stage
        out = 4 * mid
        for i in range(n):
            total += c * mid + 2 * mid + mid * mid * 9 + 2 * mid + mid * out + 2 * out
            if se_r is not None:
                h = max(1, out // se_r)
                total += out * h + h + h * out + out
            if skip and c != out:
                total += c * out + 2 * out
            c = out
    return total + c * classes + classes


@pytest.mark.parametrize("skip", [True, False])
def test_parameter_counts_match_a_hand_count(skip):
    assert models.count_params(_build(depth=14, width=4, skip=skip)) == _basic_params(3, 4, 2, 5, skip)
    bottleneck = _build(depth=20, width=4, block="bottleneck", skip=skip, se=True, se_reduction=4)
    assert models.count_params(bottleneck) == _bottleneck_params(3, 4, 2, 5, skip, se_r=4)


@pytest.mark.parametrize("options", VARIANTS)
def test_every_variant_runs_its_summary_adds_up_and_it_exports(options):
    model = _build(**options).eval()
    x = torch.rand(2, 3, 16, 16)
    assert model(x).shape == (2, 5)
    rows = models.summary(model, (3, 16, 16))
    assert sum(r.params for r in rows) == models.count_params(model)  # no module that never runs (old plain nets)
    expansion = 4 if options.get("block") == "bottleneck" else 1
    assert {r.name: r.output_shape for r in rows}["fc"] == (5,)
    assert model.stage3(model.stage2(model.stage1(model.stem(x)))).shape == (2, 64 * expansion, 4, 4)
    config = models.ModelConfig("resnet_small", 3, 5, 16, options=options)
    namespace: dict = {}
    exec(compile(model_source(model, config), "exported.py", "exec"), namespace)  # noqa: S102 - our own code
    rebuilt = namespace["build_model"]()
    rebuilt.load_state_dict(model.state_dict())
    torch.testing.assert_close(rebuilt.eval()(x), model(x))


def test_plain_net_differs_from_residual_only_in_the_shortcuts():
    for options in (dict(depth=20), dict(depth=20, block="bottleneck", preact=True, se=True)):
        plain, res = _build(seed=4, skip=False, **options), _build(seed=4, skip=True, **options)
        p, r = plain.state_dict(), res.state_dict()
        assert set(p) < set(r)
        assert all(".shortcut." in k for k in set(r) - set(p))
        for key in p:  # the same branches, drawn in the same order from the same seed
            assert torch.equal(p[key], r[key]), key
        assert not any(isinstance(b, ResidualBlock) and b.shortcut is not None for b in plain.modules())
        projections = [k for k in set(r) - set(p) if k.endswith("weight") and r[k].dim() == 4]
        assert projections and all(r[k].shape[-2:] == (1, 1) for k in projections)


def test_default_basic_block_keeps_the_state_dict_names_of_saved_runs():
    keys = set(_build(depth=8).state_dict())
    assert {"stem.0.weight", "stage1.0.conv1.weight", "stage1.0.norm2.running_mean", "stage2.0.shortcut.0.weight",
            "stage2.0.shortcut.1.weight", "fc.weight"} <= keys


def test_preact_block_and_se_gate_compute_what_the_papers_write():
    model = _build(depth=8, preact=True, se=True, se_reduction=4).eval()
    block = model.stage1[0]
    x = torch.randn(2, 16, 16, 16)
    f = block.conv1(torch.relu(block.norm1(x)))
    f = block.conv2(torch.relu(block.norm2(f)))
    s = torch.sigmoid(block.se.expand(torch.relu(block.se.reduce(f.mean((2, 3))))))
    with torch.no_grad():
        torch.testing.assert_close(block(x), f * s[:, :, None, None] + x)  # y = F(x) + x, no activation after
    assert block.se.reduce.out_features == 16 // 4


def _trained(dataset, **options):
    config = TrainConfig(data=dataset.name, model="resnet_small", model_options={"width": 4, **options},
                         optimizer="adam", lr=5e-3, epochs=2, seed=0)
    return Trainer(config, dataset).fit()


def test_removing_f_leaves_the_shortcut_output_and_restores_the_block():
    for preact in (False, True):
        model = _build(depth=14, preact=preact).eval()
        x = torch.rand(3, 3, 16, 16)
        before = model(x)
        for name in ("stage1.1", "stage2.0"):  # identity and projection shortcut
            block, seen = model.get_submodule(name), {}

            def keep(module, inputs, output):
                seen["x"], seen["y"] = inputs[0], output

            with torch.no_grad(), residual.lesioned(model, [name]):
                replaced = model.get_submodule(name)
                assert replaced is not block
                handle = replaced.register_forward_hook(keep)
                model(x)
                handle.remove()
            shortcut = block.shortcut(seen["x"])
            expected = shortcut if preact else torch.relu(shortcut)
            torch.testing.assert_close(seen["y"], expected)
            if name == "stage1.1" and not preact:
                torch.testing.assert_close(seen["y"], seen["x"])  # identity of a post-ReLU (≥ 0) input
            assert model.get_submodule(name) is block
        torch.testing.assert_close(model(x), before)


def test_lesion_of_a_plain_net_keeps_shapes_and_names_the_shape_changing_blocks():
    model = _build(depth=20, skip=False).eval()
    names, refused = residual.removable(model, torch.rand(1, 3, 16, 16))
    assert [r.block for r in refused] == ["stage2.0", "stage3.0"]
    assert all("changes the shape" in r.reason for r in refused)
    assert len(names) == 7
    with torch.no_grad(), residual.lesioned(model, names):
        assert model(torch.rand(2, 3, 16, 16)).shape == (2, 5)
        assert sum(isinstance(m, nn.Identity) and n.startswith("stage") for n, m in model.named_modules()) == 7


def test_lesion_study_reports_singles_random_k_and_leaves_the_model_alone(digits):
    data = subsample(digits, per_class=20, seed=0)
    run = _trained(data, depth=14)
    state = {k: v.clone() for k, v in run.model.state_dict().items()}
    run.model.train()
    lesion = residual.run_lesion(run, data.test, seed=3, draws=4)
    assert run.model.training and all(torch.equal(state[k], v) for k, v in run.model.state_dict().items())
    assert [r.block for r in lesion.removed] == [f"stage{s}.{i}" for s in (1, 2, 3) for i in (0, 1)]
    assert [p.k for p in lesion.random_k] == list(range(1, 7))
    assert lesion.random_k[-1].acc_std == 0  # every draw of k = n removes all blocks
    assert lesion.baseline_acc == pytest.approx(run.history.test_acc)
    singles = {r.block: r.acc for r in lesion.removed}
    with torch.no_grad(), residual.lesioned(run.model, ["stage2.1"]):
        correct = (run.model.eval()(data.test.x).argmax(1) == data.test.y).float().mean().item()
    assert singles["stage2.1"] == pytest.approx(correct)
    again = residual.run_lesion(run, data.test, seed=3, draws=4)
    assert again.to_dict() == lesion.to_dict()
    assert lesion.chance == pytest.approx(0.1)


def test_lesion_of_a_model_without_removable_blocks_is_refused(digits):
    model = models.build("tinyvgg", in_channels=1, num_classes=10, image_size=8)
    with pytest.raises(UserInputError, match="no block a lesion can remove"):
        residual.lesion_study(model, digits.test, num_classes=10)


def test_path_lengths_are_binomial_and_count_every_path():
    for n in (0, 1, 3, 9):
        counts = residual.path_lengths(n)
        assert sum(counts) == 2**n
        enumerated = [0] * (n + 1)  # each block entered (1) or skipped (0)
        for choice in itertools.product((0, 1), repeat=n):
            enumerated[sum(choice)] += 1
        assert counts == enumerated
    assert residual.path_lengths(54)[27] == math.comb(54, 27)
    with pytest.raises(UserInputError):
        residual.path_lengths(-1)


def test_degradation_job_yields_training_curves_of_every_net(digits):
    data = subsample(digits, per_class=10, seed=0)
    recipe = residual.DegradationRecipe(depths=(14, 8), width=4, epochs=2, batch_size=32)
    events = list(residual.degradation_experiment(lambda: False, recipe=recipe, dataset=data))
    epochs = [(name, e.epoch) for name, e, _ in events if isinstance(e, EpochEnd)]
    names = ["plain-8", "residual-8", "plain-14", "residual-14"]
    assert epochs == [(n, 1) for n in names] + [(n, 2) for n in names]  # interleaved, shallowest first
    last = {name: run for name, e, run in events if run is not None}
    assert all(len(run.history.train_loss) == 2 for run in last.values())
    result = residual.degradation(last.values())
    assert list(result.plain) == [8, 14] and list(result.residual) == [8, 14]
    assert result.plain[14] == last["plain-14"].history.train_loss[-1]
    assert last["plain-14"].config["optimizer"] == "sgd" and last["plain-14"].model_config.options["skip"] is False
    with pytest.raises(UserInputError, match=r"pick at least 2; got \[8\]"):
        residual.degradation_runs(residual.DegradationRecipe(depths=(8,)), data)


def test_degradation_verdict():
    worse = residual.Degradation(plain={8: 0.04, 20: 0.05, 44: 1.3}, residual={8: 0.03, 20: 0.005, 44: 0.007})
    assert worse.plain_degrades and worse.residual_holds and worse.reproduced
    flat = residual.Degradation(plain={8: 0.04, 44: 0.03}, residual={8: 0.03, 44: 0.2})
    assert not flat.plain_degrades and not flat.residual_holds and not flat.reproduced


@pytest.fixture(scope="module")
def run_files(tmp_path_factory, digits):
    data = subsample(digits, per_class=15, seed=0)
    folder = tmp_path_factory.mktemp("runs")
    files = {}
    for name, model, options in (("res", "resnet_small", dict(depth=8, width=4)), ("linear", "linear", {})):
        config = TrainConfig(data="digits", model=model, model_options=options, epochs=1, seed=0)
        files[name] = folder / f"{name}.pt"
        files[name].write_bytes(save_run(Trainer(config, data).fit()))
    return files


def test_cli_lesion_prints_json(run_files, capsys, digits):
    assert main(["lesion", str(run_files["res"]), "--seed", "1", "--draws", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"baseline_acc", "removed", "not_removable", "random_k"} <= set(out)
    assert [r["block"] for r in out["removed"]] == ["stage1.0", "stage2.0", "stage3.0"]
    assert out["not_removable"] == [] and [p["k"] for p in out["random_k"]] == [1, 2, 3]
    assert out["test_images"] == len(digits.test)  # the full test split of the run's data set and seed


def test_cli_lesion_bad_input_exits_2(run_files, capsys, tmp_path):
    assert main(["lesion", str(run_files["linear"]), "--json"]) == 2
    assert "no block a lesion can remove" in capsys.readouterr().err
    assert main(["lesion", str(tmp_path / "missing.pt")]) == 2
    (tmp_path / "junk.pt").write_bytes(b"not a run")
    assert main(["lesion", str(tmp_path / "junk.pt")]) == 2
    assert main(["lesion", str(run_files["res"]), "--data", "faces"]) == 2
    assert "the run was trained on" in capsys.readouterr().err
