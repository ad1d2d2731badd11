"""Trainable models: the registry, the architectures that fill it, and `summary`."""

# Importing registers the architectures, in lecture order: LeNet, AlexNet, VGG, GoogLeNet, ResNet, DenseNet, ViT.
from engine.models import classic, minis, resnet, densenet, vit  # noqa: F401, I001
from engine.models.blocks import activation_names, evaluating, init_names, norm_names
from engine.models.registry import ModelConfig, ModelInfo, build, build_from_config, info, names
from engine.models.summary import LayerSummary, count_params, summary

__all__ = [
    "ModelConfig", "ModelInfo", "LayerSummary", "activation_names", "build", "build_from_config",
    "count_params", "evaluating", "info", "init_names", "names", "norm_names", "summary",
]
