"""Dropout on a real layer: the masks it draws in training, the identity at test time, and MC-dropout.

In training, (inverted) dropout keeps each unit with probability 1 − p and scales the kept ones by
1/(1 − p), so a unit's expected output equals its input; at test time the layer is the identity,
the deterministic stand-in for averaging over all masks. MC-dropout averages k stochastic passes
instead (dropout left on, everything else in eval mode — BatchNorm must keep its running
statistics, or a test batch would be normalized by its own), which approximates that average and
gives a spread as a measure of uncertainty.

References:
    Srivastava et al. 2014, "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 15.
    Gal & Ghahramani 2016, "Dropout as a Bayesian Approximation", ICML, arXiv 1506.02142.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from engine.device import seeded
from engine.errors import UserInputError
from engine.training.trainer import EVAL_CHUNK

MAX_MC_PASSES = 200  # stochastic passes of MC-dropout
MAX_MC_IMAGES = 5000  # images MC-dropout evaluates (the first ones of the split)
MAX_MASK_SAMPLES = 64  # masks drawn for the picture
MEAN_SAMPLES = 2000  # masks averaged to show that the expected output is the input


def dropout_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every dropout layer (nn.Dropout, Dropout1d/2d/3d, AlphaDropout)."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, nn.modules.dropout._DropoutNd)]


@contextmanager
def at_test_time(model: nn.Module, *, dropout: bool = False) -> Iterator[nn.Module]:
    """The model in eval mode (BatchNorm on its running statistics); with `dropout`, its dropout layers still
    draw masks. Every module's own mode comes back afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    if dropout:
        for _, layer in dropout_layers(model):
            layer.train()
    try:
        yield model
    finally:
        for module, mode in modes:
            module.train(mode)


def _check_dropout(model: nn.Module) -> list[tuple[str, nn.Module]]:
    layers = [(name, m) for name, m in dropout_layers(model) if m.p > 0]
    if not layers:
        raise UserInputError("this model has no dropout (every dropout layer has p = 0): train one with "
                             "dropout p > 0 for MC-dropout")
    return layers


@dataclass
class MCDropout:
    """Eval-mode probabilities and those of k stochastic passes, for N images with K classes."""

    deterministic: Tensor  # (N, K) dropout off: the usual test-time pass
    passes: Tensor  # (k, N, K) dropout on, BatchNorm in eval
    labels: Tensor  # (N,)

    @property
    def mean(self) -> Tensor:
        return self.passes.mean(0)  # (N, K)

    def _accuracy(self, probabilities: Tensor) -> float:
        return float((probabilities.argmax(-1) == self.labels).float().mean())

    @property
    def deterministic_accuracy(self) -> float:
        return self._accuracy(self.deterministic)

    @property
    def mc_accuracy(self) -> float:
        return self._accuracy(self.mean)

    @property
    def pass_accuracies(self) -> list[float]:
        """Accuracy of each stochastic pass on its own."""
        return [self._accuracy(p) for p in self.passes]

    def accuracy_after(self) -> list[float]:
        """Accuracy of the mean of the first j passes, for j = 1 … k."""
        running = self.passes.cumsum(0) / torch.arange(1, len(self.passes) + 1)[:, None, None]  # (k, N, K)
        return [self._accuracy(p) for p in running]

    def spread(self) -> Tensor:
        """(N,) standard deviation over the passes of the probability of the class the mean predicts."""
        chosen = self.mean.argmax(1)  # (N,)
        return self.passes[:, torch.arange(len(chosen)), chosen].std(0)


def mc_dropout(model: nn.Module, x: Tensor, y: Tensor, *, passes: int = 30, seed: int = 0,
               progress: Callable[[float, str], None] | None = None) -> MCDropout:
    """The deterministic pass and `passes` stochastic passes (dropout on, BatchNorm in eval) over images x."""
    _check_dropout(model)
    if not 1 <= passes <= MAX_MC_PASSES:
        raise UserInputError(f"MC-dropout passes must be between 1 and {MAX_MC_PASSES}; got {passes}")
    x, y = x[:MAX_MC_IMAGES], y[:MAX_MC_IMAGES]
    device = next(model.parameters()).device

    def forward() -> Tensor:
        return torch.cat([model(x[i:i + EVAL_CHUNK].to(device)).softmax(1).cpu()
                          for i in range(0, len(x), EVAL_CHUNK)])

    with torch.no_grad():
        with at_test_time(model):
            deterministic = forward()
        stochastic = []
        with at_test_time(model, dropout=True), seeded(seed, device):
            for k in range(passes):
                stochastic.append(forward())
                if progress is not None:
                    progress((k + 1) / passes, f"stochastic pass {k + 1} of {passes}")
    return MCDropout(deterministic, torch.stack(stochastic), y.cpu())


@dataclass
class DropoutMasks:
    """What one dropout layer does to the activations of one image, D units."""

    layer: str
    p: float
    inputs: Tensor  # (D,) the activations reaching the layer
    masks: Tensor  # (S, D) 1 = kept, 0 = dropped
    outputs: Tensor  # (S, D) train-mode outputs: inputs · mask / (1 − p)
    mean_output: Tensor  # (D,) the mean train-mode output over MEAN_SAMPLES masks: ≈ inputs
    eval_output: Tensor  # (D,) eval mode: the identity


def dropout_masks(model: nn.Module, image: Tensor, *, layer: str | None = None, p: float | None = None,
                  samples: int = 8, seed: int = 0) -> DropoutMasks:
    """Masks drawn by the model's dropout layer `layer` (default: the first) on the activations of one image.

    `p` overrides the layer's own rate (a model trained without dropout still has the layer, at p = 0).
    """
    layers = dict(dropout_layers(model))
    if not layers:
        raise UserInputError("this model has no dropout layer; pick an MLP, LeNet-5 or Tiny VGG")
    name = layer or next(iter(layers))
    if name not in layers:
        raise UserInputError(f"no dropout layer {name!r}; the model's are {', '.join(layers)}")
    module = layers[name]
    rate = module.p if p is None else float(p)
    if not 0 <= rate < 1:
        raise UserInputError(f"dropout p must be in [0, 1); got {rate}")
    if not 1 <= samples <= MAX_MASK_SAMPLES:
        raise UserInputError(f"mask samples must be between 1 and {MAX_MASK_SAMPLES}; got {samples}")
    captured: list[Tensor] = []
    handle = module.register_forward_pre_hook(lambda _, args: captured.append(args[0].detach()))
    device = next(model.parameters()).device
    try:
        with torch.no_grad(), at_test_time(model):
            model(image[None].to(device) if image.dim() == 3 else image[:1].to(device))  # (1, C, H, W)
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(f"the dropout layer {name} was never reached")  # an internal invariant
    inputs = captured[0].flatten().cpu()  # (1, D, …) -> (D,)
    repeated = inputs.expand(samples, -1)  # (S, D)
    drop = module if p is None else type(module)(rate)  # the layer itself, or one like it at the chosen p
    with torch.no_grad(), at_test_time(drop, dropout=True):
        with seeded(seed):
            outputs = drop(repeated).cpu()
        with seeded(seed):
            masks = (drop(torch.ones_like(repeated)) != 0).float()  # the same draws, on ones
        with seeded(seed + 1):
            mean_output = drop(inputs.expand(MEAN_SAMPLES, -1)).mean(0)
    with torch.no_grad(), at_test_time(drop):
        eval_output = drop(inputs)
    return DropoutMasks(name, rate, inputs, masks, outputs, mean_output, eval_output)
