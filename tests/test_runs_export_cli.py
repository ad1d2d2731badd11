"""Run files round-trip exactly, exported code rebuilds the model, the CLI behaves, the engine stays pure."""

import ast
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import models
from engine.errors import UserInputError
from engine.models.export import model_source
from engine.training.config import TrainConfig
from engine.training.runs import load_run, save_run
from engine.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(digits):
    trainer = Trainer(TrainConfig(model="tinyvgg", model_options={"norm": "batch"}, epochs=2), digits)
    return trainer.fit()


def test_run_save_load_gives_identical_outputs(trained, digits):
    loaded = load_run(save_run(trained))
    x = digits.test.x[:16]
    for key, value in trained.model.state_dict().items():
        assert torch.equal(value, loaded.model.state_dict()[key]), key
    # The Trainer runs CNNs channels_last; in the same memory format the outputs are bit-identical.
    loaded.model.to(memory_format=torch.channels_last)
    trained.model.eval(), loaded.model.eval()
    torch.testing.assert_close(trained.model(x), loaded.model(x), rtol=0, atol=0)
    assert loaded.history.val_acc == trained.history.val_acc
    assert loaded.config == trained.config and loaded.class_names == trained.class_names


def test_run_file_from_elsewhere_is_rejected():
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, buffer)
    for data in (b"definitely not a torch file", buffer.getvalue()):
        with pytest.raises(UserInputError, match="not a run saved by VisionExplorer"):
            load_run(data)


def test_run_file_for_another_architecture_is_rejected(trained):
    payload = torch.load(io.BytesIO(save_run(trained)), weights_only=True)
    payload["model_config"]["options"] = {"width": 8}  # the weights are for width 16
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with pytest.raises(UserInputError, match="another architecture"):
        load_run(buffer.getvalue())


@pytest.mark.parametrize("name", models.names())
def test_exported_code_rebuilds_model_and_loads_state_dict(name, tmp_path):
    options = {"norm": "batch"} if name in ("tinyvgg", "resnet_small") else {}
    config = models.ModelConfig(name, 3, 5, 16, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.25), options=options)
    model = models.build_from_config(config).eval()
    source = model_source(model, config, train_config=TrainConfig().to_dict())
    path = tmp_path / "exported.py"
    path.write_text(source)
    namespace: dict = {}
    exec(compile(source, str(path), "exec"), namespace)  # noqa: S102 - our own generated code
    rebuilt = namespace["build_model"]()
    rebuilt.load_state_dict(model.state_dict())  # strict: every name and shape must match
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(rebuilt.eval()(x), model(x))
    if name != "resnet_small":  # one standalone run covers the custom classes; each costs a torch start-up
        return
    # it runs standalone, without VisionExplorer on the path
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, cwd=tmp_path,
                            env={"PYTHONPATH": ""}, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "output shape: (1, 5)" in result.stdout


def _cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_cli_train_prints_epochs_then_json():
    result = _cli("train", "--data", "digits", "--model", "linear", "--epochs", "3", "--seed", "0", "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert sum(line.startswith("epoch") for line in lines) == 3
    summary = json.loads(lines[-1])
    assert {"test_acc", "seconds", "images_per_s", "epochs"} <= set(summary)
    assert summary["epochs"] == 3 and summary["test_acc"] > 0.8


def test_cli_defaults_come_from_the_data_sets_recipe():
    from engine.__main__ import _parser
    from engine.cli.train import config_from as _config
    from engine.training.presets import preset

    shapes = _config(_parser().parse_args(["train", "--data", "shapes"]))
    assert {k: getattr(shapes, k) for k in preset("shapes").to_dict()} == preset("shapes").to_dict()
    assert shapes.schedule == "one_cycle"
    chosen = _config(_parser().parse_args(["train", "--data", "shapes", "--schedule", "constant", "--lr", "0.01"]))
    assert (chosen.schedule, chosen.lr, chosen.epochs) == ("constant", 0.01, preset("shapes").epochs)


def test_cli_trial_with_penalty_subsample_and_no_test():
    result = _cli("train", "--data", "digits", "--model", "linear", "--optimizer", "sgd", "--lr", "0.1",
                  "--epochs", "2", "--l1", "0.01", "--l2", "0.001", "--per-class", "30", "--no-test",
                  "--lr-factor", "fc=2", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["test_acc"] is None and summary["val_acc"] > 0.5
    assert set(summary["terms"]) == {"data", "l2"} and summary["zero_fraction"] > 0
    assert summary["config"]["evaluate_test"] is False and summary["config"]["lr_factors"] == {"fc": 2.0}


def test_cli_lists_registries():
    assert "digits" in _cli("datasets").stdout
    listing = _cli("models").stdout
    assert "tinyvgg" in listing and "resnet_small" in listing


@pytest.mark.parametrize("args", [
    ("train", "--lr", "-1"), ("train", "--epochs", "0"), ("train", "--model", "vgg99"),
    ("train", "--data", "nope.zip"), ("train", "--optimizer", "lbfgs"), ("bogus",),
    ("train", "--option", "depth"), ("train", "--l1-mode", "lasso"), ("train", "--lr-factor", "fc=abc"),
    ("train", "--per-class", "0"), ("train", "--l2", "-1"), ("train", "--schedule", "warm"),
    ("train", "--mixing", "mixup", "--loss", "mse"), ("train", "--freeze", "nope"), ("train", "--head", "logits=1"),
])
def test_cli_bad_arguments_exit_2_with_one_line(args):
    result = _cli(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "error" in result.stderr


def test_cli_trains_on_a_zip_of_class_folders(tmp_path):
    archive = tmp_path / "colours.zip"
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(archive, "w") as zf:
        for label, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
            for i in range(12):
                pixels = np.clip(np.array(colour) + rng.integers(-20, 20, (12, 12, 3)), 0, 255).astype(np.uint8)
                buffer = io.BytesIO()
                Image.fromarray(pixels).save(buffer, format="PNG")
                zf.writestr(f"colours/{label}/{i}.png", buffer.getvalue())
    result = _cli("train", "--data", str(archive), "--model", "linear", "--epochs", "5", "--image-size", "8",
                  "--lr", "0.05", "--batch-size", "8", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["test_acc"] == 1.0


def test_engine_imports_neither_streamlit_nor_plotly():
    for path in (ROOT / "engine").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("streamlit", "plotly"), f"{path} imports {name}"
    probe = "import sys, engine.training.trainer, engine.training.metrics, engine.models.export, engine.__main__, engine.cli.train; " \
            "print(any(m.split('.')[0] in ('streamlit', 'plotly') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.stdout.strip() == "False", result.stderr
