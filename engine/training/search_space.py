"""Search spaces for hyperparameter search: what may be searched, ranges and choices as plain data, grids.

A space maps hyperparameter names to a range `{"low": 1e-4, "high": 1e-1, "log": True}` or a list
`{"choices": [32, 64, 128]}`. `parse_space` checks it against the hyperparameter's valid values and
the model (dropout needs a model with dropout); `configure` puts a trial's values into a TrainConfig.
A log range spreads its values evenly in log: a learning rate matters by its order of magnitude.

References:
    Bergstra & Bengio 2012, "Random Search for Hyper-Parameter Optimization", JMLR 13:281–305 (log scales,
        grids vs random points).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import optuna

from engine import models
from engine.data import augment
from engine.errors import UserInputError
from engine.registry import Registry
from engine.training.config import TrainConfig


# ---------------------------------------------------------------------------- the hyperparameters
@dataclass(frozen=True)
class Hyperparameter:
    """What a space entry may set: its valid values and the TrainConfig field or model option it fills."""

    title: str
    help: str
    low: float = 0.0  # valid values, inclusive (numbers only)
    high: float = 1.0
    integer: bool = False
    choices_only: bool = False  # a name (augmentation): only {"choices": […]}
    option: str | None = None  # a model option (dropout, width) rather than a TrainConfig field


HYPERPARAMETERS: Registry[Hyperparameter] = Registry("hyperparameter")
HYPERPARAMETERS.add("lr", Hyperparameter("learning rate η", "the step size; usually searched on a log scale",
                                         low=1e-6, high=10.0))
HYPERPARAMETERS.add("weight_decay", Hyperparameter("weight decay λ", "shrinks every weight a little each step",
                                                   low=0.0, high=1.0))
HYPERPARAMETERS.add("dropout", Hyperparameter("dropout p", "share of units zeroed while training",
                                              low=0.0, high=0.9, option="dropout"))
HYPERPARAMETERS.add("batch_size", Hyperparameter("batch size", "images per gradient step",
                                                 low=1, high=4096, integer=True))
HYPERPARAMETERS.add("width", Hyperparameter("width", "channels per conv layer (an MLP: units of its hidden layer)",
                                            low=1, high=512, integer=True, option="width"))
HYPERPARAMETERS.add("augmentation", Hyperparameter("augmentation", "how strongly training images are varied",
                                                   choices_only=True))


def hyperparameter_names() -> list[str]:
    return HYPERPARAMETERS.names()


def hyperparameter_info(name: str) -> Hyperparameter:
    return HYPERPARAMETERS.get(name)


def _model_option(model: str, name: str) -> str | None:
    """The model option a hyperparameter sets on `model` (an MLP's width is its `hidden`), or None if it has none."""
    option = hyperparameter_info(name).option
    if option is None:
        return None
    defaults = models.info(model).defaults()
    if option == "width" and "width" not in defaults and "hidden" in defaults:
        return "hidden"
    if option not in defaults:
        raise UserInputError(f"model {model!r} has no {name} option; remove {name} from the search space "
                             f"or choose a model that has one")
    return option


def configure(base: TrainConfig, params: Mapping[str, object], **overrides) -> TrainConfig:
    """`base` with a trial's hyperparameters `params` (and `overrides`) set."""
    fields, options = dict(overrides), dict(base.model_options)
    for name, value in params.items():
        option = _model_option(base.model, name)
        if option == "hidden":
            options["hidden"] = (int(value),)
        elif option is not None:
            options[option] = value
        else:
            fields[name] = value
    return dataclasses.replace(base, model_options=options, **fields)


# ---------------------------------------------------------------------------- search spaces
@dataclass(frozen=True)
class Dimension:
    """One checked space entry: a range (low, high, log) or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple | None = None
    integer: bool = False

    def suggest(self, trial: optuna.Trial) -> object:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def values(self, points: int) -> list:
        """`points` values spread over the range (evenly, or evenly in log for a log range); all choices."""
        if self.choices is not None:
            return list(self.choices)
        if points == 1:
            middle = math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2
            spread = np.array([middle])
        else:
            spread = (np.geomspace if self.log else np.linspace)(self.low, self.high, points)
        if self.integer:
            return sorted({int(round(v)) for v in spread})
        return [float(v) for v in np.clip(spread, self.low, self.high)]

    def costliest(self) -> object:
        """The value the time probe trains with: the widest net, the smallest batch (most steps), else the middle."""
        if self.name == "width":
            return max(self.values(2))
        if self.name == "batch_size":
            return min(self.values(2))
        values = self.values(1)
        return values[len(values) // 2]


def _number(name: str, key: str, value: object, spec: Hyperparameter) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserInputError(f"{name} {key} must be a number; got {value!r}")
    if spec.integer and value != int(value):
        raise UserInputError(f"{name} takes whole numbers; got {key} {value}")
    if not spec.low <= value <= spec.high:
        raise UserInputError(f"{name} must lie in [{spec.low:g}, {spec.high:g}]; got {key} {value:g}")
    return int(value) if spec.integer else float(value)


def _dimension(name: str, entry: object, model: str, train_images: int) -> Dimension:
    spec = hyperparameter_info(name)  # an unknown name raises the registry's message
    _model_option(model, name)
    if not isinstance(entry, Mapping):
        raise UserInputError(f"search space entry {name} must be a range or a list of choices; got {entry!r}")
    unknown = sorted(set(entry) - {"low", "high", "log", "choices"})
    if unknown:
        raise UserInputError(f"search space entry {name}: unknown key(s) {', '.join(unknown)}; "
                             f"use low, high, log or choices")
    if "choices" in entry:
        if set(entry) - {"choices"}:
            raise UserInputError(f"search space entry {name}: give either choices or low/high, not both")
        choices = entry["choices"]
        if isinstance(choices, (str, bytes)) or not isinstance(choices, (list, tuple)) or not choices:
            raise UserInputError(f"{name} choices must be a non-empty list; got {choices!r}")
        if spec.choices_only:
            for choice in choices:
                if not isinstance(choice, str):
                    raise UserInputError(f"{name} choices are names; got {choice!r}")
                augment.info(choice)  # an unknown name raises the registry's message
            values = tuple(dict.fromkeys(choices))
        else:
            values = tuple(dict.fromkeys(_number(name, "choice", c, spec) for c in choices))
        dimension = Dimension(name, choices=values, integer=spec.integer)
    else:
        if spec.choices_only:
            raise UserInputError(f"{name} takes a list of choices, e.g. {{'choices': {augment.names()[:2]}}}")
        if "low" not in entry or "high" not in entry:
            raise UserInputError(f"search space entry {name} needs both low and high (or choices)")
        low, high = _number(name, "low", entry["low"], spec), _number(name, "high", entry["high"], spec)
        log = entry.get("log", False)
        if not isinstance(log, bool):
            raise UserInputError(f"{name} log must be true or false; got {log!r}")
        if low > high:
            raise UserInputError(f"{name} range is empty: low {low:g} is above high {high:g}")
        if log and low <= 0:
            raise UserInputError(f"a log range needs low > 0; {name} has low {low:g}")
        dimension = Dimension(name, low, high, log, integer=spec.integer)
    if name == "batch_size" and min(dimension.values(2)) > train_images:
        raise UserInputError(f"every batch size in the space is above the {train_images} training images")
    if name == "batch_size" and max(dimension.values(2)) > train_images:
        raise UserInputError(f"batch sizes up to {train_images} (the training images) only; "
                             f"the space reaches {max(dimension.values(2))}")
    return dimension


def parse_space(space: Mapping[str, object], *, model: str, train_images: int) -> dict[str, Dimension]:
    """Check a space (plain data) for `model` and a training split of `train_images`; raise UserInputError."""
    if not isinstance(space, Mapping) or not space:
        raise UserInputError("the search space is empty: give at least one hyperparameter to search")
    return {name: _dimension(name, entry, model, train_images) for name, entry in space.items()}


def default_space(model: str) -> dict[str, dict]:
    """A sensible first space: lr on a log scale, batch size, and dropout where the model has it."""
    space: dict[str, dict] = {"lr": {"low": 1e-4, "high": 1e-1, "log": True}}
    if "dropout" in models.info(model).defaults():
        space["dropout"] = {"low": 0.0, "high": 0.5}
    else:
        space["weight_decay"] = {"low": 1e-6, "high": 1e-2, "log": True}
    space["batch_size"] = {"choices": [32, 64, 128]}
    return space


def grid_points(dimensions: Mapping[str, Dimension], trials: int) -> list[dict]:
    """The grid: every choice × k values per range, k as large as keeps the grid within `trials`."""
    fixed = math.prod(len(d.choices) for d in dimensions.values() if d.choices is not None)
    ranges = sum(d.choices is None for d in dimensions.values())
    k = 1
    while ranges and fixed * (k + 1) ** ranges <= trials:
        k += 1
    axes = {name: d.values(k) for name, d in dimensions.items()}
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
