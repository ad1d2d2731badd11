"""Trainable models: the registry, the architectures that fill it, and `summary`."""

from engine.models import classic, resnet, vit  # noqa: F401  (importing registers the architectures)
from engine.models.blocks import activation_names, evaluating, init_names, norm_names
from engine.models.registry import ModelConfig, ModelInfo, build, build_from_config, info, names
from engine.models.summary import LayerSummary, count_params, summary

__all__ = [
    "ModelConfig", "ModelInfo", "LayerSummary", "activation_names", "build", "build_from_config",
    "count_params", "evaluating", "info", "init_names", "names", "norm_names", "summary",
]
