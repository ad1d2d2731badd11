"""The trainable-model registry: `names()`, `info(name)`, `build(name, …)`, `ModelConfig`.

Shaped like torchvision's `models/_api.py`: an `engine.registry.Registry` filled by a `register`
decorator, in the order the lectures teach (linear → mlp → lenet5 → tinyvgg → resnet_small →
vit_tiny). Every model is built for a data set (channels, classes, image size) and starts with a
`Normalize` module, so it takes pixels in [0, 1].
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from torch import nn

from engine.device import seeded
from engine.errors import UserInputError
from engine.models.blocks import Normalize, initialize
from engine.registry import Registry

FACTORY_ARGS = ("in_channels", "num_classes", "image_size")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    title: str
    family: str  # "linear" | "mlp" | "cnn" | "vit"
    description: str
    factory: Callable[..., nn.Sequential] = field(repr=False)
    gradcam_layer: str | None = None  # module name for Grad-CAM, where the family has one

    def defaults(self) -> dict:
        """The model's own options with their default values."""
        return {k: p.default for k, p in inspect.signature(self.factory).parameters.items()
                if k not in FACTORY_ARGS}


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model: saved with every Run and used by the exporter."""

    name: str
    in_channels: int
    num_classes: int
    image_size: int
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    options: dict = field(default_factory=dict)
    init: str = "default"
    init_sigma: float = 0.01
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        data = dict(data)
        data["mean"], data["std"] = tuple(data["mean"]), tuple(data["std"])
        return cls(**data)


MODELS: Registry[ModelInfo] = Registry("model")


def register(name: str, *, title: str, family: str, description: str, gradcam_layer: str | None = None):
    """Decorator adding a factory `fn(*, in_channels, num_classes, image_size, **options) -> nn.Sequential`."""
    return MODELS.register(name, lambda factory: ModelInfo(name, title, family, description, factory, gradcam_layer))


def names() -> list[str]:
    return MODELS.names()


def info(name: str) -> ModelInfo:
    return MODELS.get(name)


def _check_options(entry: ModelInfo, options: dict) -> None:
    unknown = sorted(set(options) - set(entry.defaults()))
    if unknown:
        valid = ", ".join(entry.defaults()) or "none"
        raise UserInputError(f"{entry.name} has no option {', '.join(unknown)}; its options are {valid}")


def build(name: str, *, in_channels: int, num_classes: int, image_size: int,
          mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
          init: str = "default", init_sigma: float = 0.01, seed: int = 0, **options) -> nn.Sequential:
    """Build model `name` for a data set; the same arguments and seed give the same weights."""
    entry = info(name)
    _check_options(entry, options)
    if in_channels < 1 or num_classes < 2:
        raise UserInputError(f"a model needs ≥1 input channel and ≥2 classes; got {in_channels} and {num_classes}")
    mean = tuple(mean) if mean is not None else (0.0,) * in_channels
    std = tuple(std) if std is not None else (1.0,) * in_channels
    if len(mean) != in_channels or len(std) != in_channels:
        raise UserInputError(f"mean/std need one value per channel ({in_channels}); got {len(mean)} and {len(std)}")
    with seeded(seed):  # nn.Module constructors draw from torch's global generator
        body = entry.factory(in_channels=in_channels, num_classes=num_classes,
                             image_size=image_size, **options)
        initialize(body, init, sigma=init_sigma)
    return nn.Sequential(OrderedDict([("normalize", Normalize(mean, std)), *body.named_children()]))


def build_from_config(config: ModelConfig) -> nn.Sequential:
    return build(config.name, in_channels=config.in_channels, num_classes=config.num_classes,
                 image_size=config.image_size, mean=config.mean, std=config.std, init=config.init,
                 init_sigma=config.init_sigma, seed=config.seed, **config.options)
