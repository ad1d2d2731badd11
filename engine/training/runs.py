"""A trained Run — config, model, per-epoch history — and its file format.

A Run file is a `torch.save` of plain containers and tensors only, so it loads with
`torch.load(weights_only=True)`: opening a file from someone else never runs their code.
"""

from __future__ import annotations

import io
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


def load_run(data: bytes) -> Run:
    """Rebuild a Run from `save_run` bytes; anything else raises UserInputError saying what is wrong."""
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for foreign or corrupt files
        raise UserInputError(f"this file is not a VisionExplorer run (it could not be read: "
                             f"{type(error).__name__})") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserInputError("this file is not a VisionExplorer run (it has no 'visionexplorer.run' marker)")
    if payload.get("version") != VERSION:
        raise UserInputError(f"run file version {payload.get('version')} is not supported (expected {VERSION})")
    try:
        model_config = ModelConfig.from_dict(payload["model_config"])
        model = build_model(model_config, payload["config"])
    except (KeyError, TypeError) as error:
        raise UserInputError(f"the run file's model description is incomplete: {error}") from error
    state = payload.get("state_dict")
    expected = model.state_dict()
    if not isinstance(state, dict) or set(state) != set(expected) or any(
            tuple(state[k].shape) != tuple(v.shape) for k, v in expected.items()):
        raise UserInputError(f"the weights in this run file do not fit a {model_config.name} model "
                             "with its saved options: it was made for another architecture")
    model.load_state_dict(state)
    return Run(name=payload["name"], config=payload["config"], model_config=model_config,
               class_names=list(payload["class_names"]), dataset_title=payload["dataset_title"],
               model=model, history=History.from_dict(payload["history"]))
