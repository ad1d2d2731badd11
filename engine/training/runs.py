"""A trained Run — config, model, per-epoch history — and its file format.

A Run file is a `torch.save` of plain containers and tensors only, so it loads with
`torch.load(weights_only=True)`: opening a file from someone else never runs their code.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import Tensor, nn

from engine.errors import UserInputError
from engine.models import ModelConfig, build_from_config
from engine.models.heads import add_heads
from engine.training.objective import head_sizes

FORMAT = "visionexplorer.run"
VERSION = 1


@dataclass
class History:
    """Per-epoch metrics (parallel lists) and how the run ended."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    images_per_s: list[float] = field(default_factory=list)
    terms: dict[str, list[float]] = field(default_factory=dict)  # loss term -> its per-epoch mean
    weight_norm: list[float] = field(default_factory=list)  # ‖w‖₂ of the penalized weights
    zero_fraction: list[float] = field(default_factory=list)  # share of them with |w| < 1e-6
    warnings: list[str] = field(default_factory=list)  # e.g. dead units, as the Warned events said
    test_loss: float | None = None
    test_acc: float | None = None
    best_epoch: int = 0
    diverged_at: int | None = None  # step
    stopped_reason: str | None = None
    total_seconds: float = 0.0
    snapshots: list[dict[str, Tensor]] = field(default_factory=list, repr=False)

    def append(self, event) -> None:
        """Record an EpochEnd event."""
        for name in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s",
                     "weight_norm", "zero_fraction"):
            getattr(self, name).append(getattr(event, name))
        for name, value in event.terms.items():
            self.terms.setdefault(name, []).append(value)

    def mean_images_per_s(self) -> float:
        return sum(self.images_per_s) / len(self.images_per_s) if self.images_per_s else 0.0

    def to_dict(self, *, with_snapshots: bool = False) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "snapshots"}
        if with_snapshots:
            data["snapshots"] = self.snapshots
        return data

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class Run:
    name: str
    config: dict  # TrainConfig.to_dict()
    model_config: ModelConfig
    class_names: list[str]
    dataset_title: str
    model: nn.Module = field(repr=False)
    history: History = field(default_factory=History)

    @property
    def test_acc(self) -> float | None:
        return self.history.test_acc


def build_model(model_config: ModelConfig, config: dict) -> nn.Module:
    """A fresh model of a Run's architecture: the registry's, with the extra heads its config names."""
    model = build_from_config(model_config)
    heads = config.get("heads") or {}
    if heads:
        model = add_heads(model, head_sizes(heads, model_config.num_classes), seed=model_config.seed)
    return model


def save_run(run: Run) -> bytes:
    """Serialize a Run (state_dict + configs + history) to bytes for a download."""
    payload = {
        "format": FORMAT, "version": VERSION, "name": run.name, "config": run.config,
        "model_config": asdict(run.model_config), "class_names": list(run.class_names),
        "dataset_title": run.dataset_title, "history": run.history.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


NOT_A_RUN = "this is not a run saved by VisionExplorer"
_REQUIRED_MODEL_KEYS = ("name", "in_channels", "num_classes", "image_size")
# Every version of the app saved these; a newer setting missing from an older file takes its default
# where it is read (TrainConfig.from_dict).
_REQUIRED_CONFIG_KEYS = ("data", "model", "loss")


def _what_it_is(data: bytes) -> str:
    """What a file that torch cannot open is, from its first bytes, in the user's words."""
    if not data:
        return "the file is empty"
    if data.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")) or data[8:12] == b"WEBP":
        return "it is an image; images go to an image uploader (Try it), runs are a run's downloaded .pt file"
    if data.startswith(b"PK\x03\x04"):
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return "it is a damaged zip archive"
        if not any(n.endswith("data.pkl") for n in names):
            return "it is a zip archive of files (a data set?), not a saved run"
    return "it is not a PyTorch file, or it is damaged (cut off?)"


def _foreign(payload) -> str:
    """What a PyTorch file of another program holds, for the message refusing it."""
    if isinstance(payload, dict) and payload and all(isinstance(v, Tensor) for v in payload.values()):
        return (f"it holds only weights (a state_dict of {len(payload)} tensors) from another program, without "
                "the model description a run carries")
    if isinstance(payload, dict):
        return f"it is a PyTorch file of another program (keys: {', '.join(map(str, list(payload)[:6]))})"
    return f"it is a PyTorch file of another program (a {type(payload).__name__})"


def _open(data: bytes) -> dict:
    """The payload of a run file, refusing anything else; never runs code from the file."""
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for foreign or corrupt files
        why = ("it holds Python objects, not just tensors and plain data (such a file could run code when "
               "opened), so it was not opened") if "GLOBAL" in str(error) else _what_it_is(data)
        raise UserInputError(f"{NOT_A_RUN}: {why}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserInputError(f"{NOT_A_RUN}: {_foreign(payload)}")
    version = payload.get("version", VERSION)
    if not isinstance(version, int) or version > VERSION:
        raise UserInputError(f"this run was saved by a newer version of VisionExplorer (run format {version}); "
                             f"this app reads format {VERSION} — update the app")
    return payload


def _model_config(saved) -> ModelConfig:
    missing = [k for k in _REQUIRED_MODEL_KEYS if not isinstance(saved, dict) or k not in saved]
    if missing:
        raise UserInputError(f"the run file is damaged: its model description lacks {', '.join(missing)}")
    known = {k: v for k, v in saved.items() if k in {f.name for f in fields(ModelConfig)}}
    channels = saved["in_channels"]
    known.setdefault("mean", (0.0,) * channels)  # the Normalize buffers come from the state_dict anyway
    known.setdefault("std", (1.0,) * channels)
    return ModelConfig.from_dict(known)


def _check_weights(state, model: nn.Module, model_config: ModelConfig) -> None:
    expected = model.state_dict()
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise UserInputError("the run file is damaged: it has no weights (state_dict)")
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    reshaped = [k for k in set(expected) & set(state) if tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or reshaped:
        raise UserInputError(
            f"the weights in this run file do not fit a {model_config.name} model with its saved options: it was "
            f"made for another architecture ({len(missing)} weights missing, {len(unexpected)} unexpected, "
            f"{len(reshaped)} of another shape)")


def _fitting_model(model_config: ModelConfig, config: dict, state) -> nn.Module:
    """The run's model, built once its saved weights are known to fit: shapes are compared on torch's
    "meta" device first (no memory), so a file describing a gigantic network costs nothing."""
    with torch.device("meta"):
        skeleton = build_model(model_config, config)
    _check_weights(state, skeleton, model_config)
    model = build_model(model_config, config)
    model.load_state_dict(state)
    return model


def _config(saved) -> dict:
    missing = [k for k in _REQUIRED_CONFIG_KEYS if not isinstance(saved, dict) or k not in saved]
    if missing:
        raise UserInputError(f"the run file is damaged: its training settings lack {', '.join(missing)}")
    return dict(saved)


def read_run_file(data: bytes) -> tuple[Run, list[str]]:
    """Rebuild a Run from `save_run` bytes, and notes on what an older file lacked (defaults used).

    Anything that is not a run raises UserInputError saying what the file is instead.
    """
    payload = _open(data)
    lacks = [k for k in ("name", "class_names", "dataset_title", "history") if k not in payload]
    try:
        model_config = _model_config(payload.get("model_config"))
        lacks += [f"model_config.{k}" for k in ("mean", "std") if k not in payload["model_config"]]
        config = _config(payload.get("config"))
        model = _fitting_model(model_config, config, payload.get("state_dict"))
        history = History.from_dict(payload.get("history", {}))
    except UserInputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as error:  # RuntimeError: load_state_dict
        raise UserInputError(f"the run file's model description is incomplete or damaged: {error}") from error
    classes = [str(c) for c in payload.get("class_names", range(model_config.num_classes))]
    if len(classes) != model_config.num_classes:
        raise UserInputError(f"the run file is damaged: {len(classes)} class names for a model with "
                             f"{model_config.num_classes} outputs")
    notes = [f"this run was saved by an older version of VisionExplorer; defaults were used for: "
             f"{', '.join(lacks)}"] if lacks else []
    run = Run(name=str(payload.get("name", f"{model_config.name} (uploaded)")), config=config,
              model_config=model_config, class_names=classes,
              dataset_title=str(payload.get("dataset_title", "an unknown data set")), model=model, history=history)
    return run, notes


def load_run(data: bytes) -> Run:
    """Rebuild a Run from `save_run` bytes; anything else raises UserInputError saying what is wrong."""
    return read_run_file(data)[0]
