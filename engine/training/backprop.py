"""Backpropagation by hand: a 2-2-2 network as tables of numbers (expressions.py does scalar expressions).

Everything here is plain Python floats, so each number a page shows is one line of arithmetic;
`network_autograd` computes the same with torch.autograd for comparison.

References:
    Matt Mazur, "A Step by Step Backpropagation Example" (the default numbers),
    https://mattmazur.com/2015/03/17/a-step-by-step-backpropagation-example/
    Rumelhart, Hinton & Williams, "Learning representations by back-propagating errors", Nature 1986.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch

from engine.errors import UserInputError
from engine.models.blocks import make_activation
from engine.training.expressions import stable_sigmoid

HIDDEN_ACTIVATIONS = ("sigmoid", "tanh", "relu")  # the output units are always sigmoids
INPUTS = ("x1", "x2")
HIDDEN = ("h1", "h2")
OUTPUTS = ("o1", "o2")
# (from node, to node, weight name), in the order of Mazur's worked example
EDGES = (("x1", "h1", "w1"), ("x2", "h1", "w2"), ("x1", "h2", "w3"), ("x2", "h2", "w4"),
         ("h1", "o1", "w5"), ("h2", "o1", "w6"), ("h1", "o2", "w7"), ("h2", "o2", "w8"))
BIASES = {"h1": "b1", "h2": "b2", "o1": "b3", "o2": "b4"}
DEFAULT_INPUT = (0.05, 0.10)
DEFAULT_TARGET = (0.01, 0.99)


_FLOAT_ACTIVATIONS: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "sigmoid": (stable_sigmoid, lambda a: a * (1 - a)),  # derivatives written in terms of the activation a
    "tanh": (math.tanh, lambda a: 1 - a * a),
    "relu": (lambda z: max(z, 0.0), lambda a: 1.0 if a > 0 else 0.0),
}


# ---- the tiny network -----------------------------------------------------------------------
@dataclass(frozen=True)
class TinyNet:
    """2 inputs → 2 hidden units → 2 sigmoid outputs, loss ½Σ(t − o)²; defaults are Mazur's example."""

    w1: float = 0.15
    w2: float = 0.20
    w3: float = 0.25
    w4: float = 0.30
    w5: float = 0.40
    w6: float = 0.45
    w7: float = 0.50
    w8: float = 0.55
    b1: float = 0.35
    b2: float = 0.35
    b3: float = 0.60
    b4: float = 0.60
    activation: str = "sigmoid"

    def __post_init__(self):
        if self.activation not in HIDDEN_ACTIVATIONS:
            raise UserInputError(f"hidden activation must be one of {', '.join(HIDDEN_ACTIVATIONS)}; "
                                 f"got {self.activation!r}")

    def parameters(self) -> dict[str, float]:
        """Weights then biases, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "activation"}


@dataclass(frozen=True)
class NodeForward:
    name: str
    pre_activation: float  # z = Σ w·a + b (an input's z is its value)
    activation: float  # a = f(z)


@dataclass(frozen=True)
class ForwardTable:
    nodes: dict[str, NodeForward]
    target: tuple[float, float]
    loss: float


@dataclass(frozen=True)
class NodeBackward:
    name: str
    upstream: float  # ∂L/∂a, arriving from the loss or the next layer
    local: float  # ∂a/∂z, the unit's own derivative
    grad: float  # ∂L/∂z = upstream × local


@dataclass(frozen=True)
class BackwardTable:
    nodes: dict[str, NodeBackward]
    parameters: dict[str, float]  # ∂L/∂w for every weight and bias


def _check_pair(name: str, value: tuple[float, float]) -> tuple[float, float]:
    if len(value) != 2 or not all(math.isfinite(v) for v in value):
        raise UserInputError(f"{name} must be two finite numbers; got {value!r}")
    return float(value[0]), float(value[1])


def _incoming(node: str) -> list[tuple[str, str]]:
    return [(src, w) for src, dst, w in EDGES if dst == node]


def _outgoing(node: str) -> list[tuple[str, str]]:
    return [(dst, w) for src, dst, w in EDGES if src == node]


def forward_table(net: TinyNet, *, x: tuple[float, float] = DEFAULT_INPUT,
                  target: tuple[float, float] = DEFAULT_TARGET) -> ForwardTable:
    """Every node's pre-activation and activation, and the loss L = ½ Σ (t − o)²."""
    x, target = _check_pair("x", x), _check_pair("target", target)
    nodes = {name: NodeForward(name, v, v) for name, v in zip(INPUTS, x)}
    for layer, f in ((HIDDEN, _FLOAT_ACTIVATIONS[net.activation][0]), (OUTPUTS, stable_sigmoid)):
        for name in layer:
            z = sum(getattr(net, w) * nodes[src].activation for src, w in _incoming(name)) + getattr(net, BIASES[name])
            if not math.isfinite(z):
                raise UserInputError(f"the pre-activation of {name} overflowed ({z}); use smaller weights")
            nodes[name] = NodeForward(name, z, f(z))
    loss = sum(0.5 * (t - nodes[o].activation) ** 2 for o, t in zip(OUTPUTS, target))
    return ForwardTable(nodes, target, loss)


def backward_table(net: TinyNet, forward: ForwardTable) -> BackwardTable:
    """Node by node from the loss back: upstream gradient × local derivative, then ∂L/∂w = a_from · ∂L/∂z_to."""
    local_of = {**dict.fromkeys(INPUTS, lambda a: 1.0), **dict.fromkeys(HIDDEN, _FLOAT_ACTIVATIONS[net.activation][1]),
                **dict.fromkeys(OUTPUTS, _FLOAT_ACTIVATIONS["sigmoid"][1])}
    nodes: dict[str, NodeBackward] = {}
    for name in (*OUTPUTS, *HIDDEN, *INPUTS):
        a = forward.nodes[name].activation
        if name in OUTPUTS:
            upstream = a - forward.target[OUTPUTS.index(name)]  # ∂/∂o of ½(t − o)²
        else:  # every path out of the node adds its share (the multivariate chain rule)
            upstream = sum(getattr(net, w) * nodes[dst].grad for dst, w in _outgoing(name))
        local = local_of[name](a)
        nodes[name] = NodeBackward(name, upstream, local, upstream * local)
    params = {w: forward.nodes[src].activation * nodes[dst].grad for src, dst, w in EDGES}
    params.update({b: nodes[node].grad for node, b in BIASES.items()})
    return BackwardTable(nodes, params)


def sgd_step(net: TinyNet, grads: BackwardTable, *, lr: float) -> TinyNet:
    """One plain gradient-descent update w ← w − lr · ∂L/∂w of every weight and bias."""
    if not (math.isfinite(lr) and lr > 0):
        raise UserInputError(f"learning rate must be a positive number; got {lr}")
    return replace(net, **{k: v - lr * grads.parameters[k] for k, v in net.parameters().items()})


@dataclass(frozen=True)
class AutogradCheck:
    """The same numbers from torch.autograd (float64): activations, ∂L/∂a, ∂L/∂z, parameter gradients."""

    pre_activation: dict[str, float]
    activation: dict[str, float]
    upstream: dict[str, float]
    grad: dict[str, float]
    parameters: dict[str, float]
    loss: float


def network_autograd(net: TinyNet, *, x: tuple[float, float] = DEFAULT_INPUT,
                     target: tuple[float, float] = DEFAULT_TARGET) -> AutogradCheck:
    """Forward and backward with torch tensors and nn activations; `.retain_grad()` keeps every node's gradient."""
    x, target = _check_pair("x", x), _check_pair("target", target)
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in net.parameters().items()}
    z: dict[str, torch.Tensor] = {}
    a: dict[str, torch.Tensor] = {}
    for name, v in zip(INPUTS, x):
        z[name] = a[name] = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    for layer, act in ((HIDDEN, make_activation(net.activation)), (OUTPUTS, make_activation("sigmoid"))):
        for name in layer:
            z[name] = sum(params[w] * a[src] for src, w in _incoming(name)) + params[BIASES[name]]
            a[name] = act(z[name])
    for name in (*HIDDEN, *OUTPUTS):
        z[name].retain_grad()
        a[name].retain_grad()
    loss = sum(0.5 * (t - a[o]) ** 2 for o, t in zip(OUTPUTS, target))
    loss.backward()
    return AutogradCheck({k: v.item() for k, v in z.items()}, {k: v.item() for k, v in a.items()},
                         {k: v.grad.item() for k, v in a.items()}, {k: v.grad.item() for k, v in z.items()},
                         {k: v.grad.item() for k, v in params.items()}, loss.item())
