"""Backpropagation by hand: a 2-2-2 network as tables of numbers, and micrograd-style scalar expressions.

Everything here is plain Python floats, so each number a page shows is one line of arithmetic;
`network_autograd` and `expression_autograd` compute the same with torch.autograd for comparison.

References:
    Matt Mazur, "A Step by Step Backpropagation Example" (the default numbers),
    https://mattmazur.com/2015/03/17/a-step-by-step-backpropagation-example/
    Andrej Karpathy, micrograd, https://github.com/karpathy/micrograd
    Rumelhart, Hinton & Williams, "Learning representations by back-propagating errors", Nature 1986.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

import torch

from engine.errors import UserInputError
from engine.models.blocks import make_activation

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
MAX_EXPRESSION_CHARS = 200


def _sigmoid(z: float) -> float:
    # the two branches keep exp from overflowing for large |z|
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


_FLOAT_ACTIVATIONS: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "sigmoid": (_sigmoid, lambda a: a * (1 - a)),  # derivatives written in terms of the activation a
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
    for layer, f in ((HIDDEN, _FLOAT_ACTIVATIONS[net.activation][0]), (OUTPUTS, _sigmoid)):
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


# ---- scalar expressions -----------------------------------------------------------------------
FUNCTIONS = ("exp", "log", "tanh", "relu", "sigmoid")
_OPERATORS = {"+": "+", "-": "-", "−": "-", "*": "*", "×": "*", "·": "*", "/": "/", "÷": "/", "^": "^",
              "**": "^", "(": "(", ")": ")"}


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "name", an operator in ASCII, or "end"
    text: str
    position: int  # 0-based character index in the expression


@dataclass(frozen=True)
class ExprNode:
    """One node of the graph: a number, a variable, or an operation on earlier nodes."""

    op: str  # "num", "var", "+", "-", "*", "/", "^", "neg" or a function name
    inputs: tuple[int, ...]  # indices of earlier nodes
    label: str  # the sub-expression it computes, as written
    position: int  # where it starts in the text (operators: the operator's position)
    value: float = 0.0  # a number's value (other nodes: unused)


@dataclass(frozen=True)
class Graph:
    """Nodes in topological order (inputs before users); the last is the expression's value."""

    text: str
    nodes: tuple[ExprNode, ...]

    @property
    def variables(self) -> list[str]:
        return [n.label for n in self.nodes if n.op == "var"]


def _tokenize(text: str) -> list[_Token]:
    tokens, i = [], 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c.isdigit() or (c == "." and text[i + 1:i + 2].isdigit()):
            j = i
            while j < len(text) and (text[j].isdigit() or text[j] == "."):
                j += 1
            if j < len(text) and text[j] in "eE" and (text[j + 1:j + 2].isdigit()
                                                      or (text[j + 1:j + 2] in ("+", "-") and text[j + 2:j + 3].isdigit())):
                j += 2
                while j < len(text) and text[j].isdigit():
                    j += 1
            try:
                float(text[i:j])
            except ValueError:
                raise UserInputError(f"malformed number {text[i:j]!r} at position {i}") from None
            tokens.append(_Token("num", text[i:j], i))
            i = j
        elif c.isalpha() or c == "_":
            j = i
            while j < len(text) and (text[j].isalnum() or text[j] == "_") and text[j].isascii():
                j += 1
            if j == i:
                raise UserInputError(f"unexpected {c!r} at position {i}")
            tokens.append(_Token("name", text[i:j], i))
            i = j
        elif text.startswith("**", i):
            tokens.append(_Token("^", "**", i))
            i += 2
        elif c in _OPERATORS:
            tokens.append(_Token(_OPERATORS[c], c, i))
            i += 1
        else:
            raise UserInputError(f"unexpected {c!r} at position {i}")
    return tokens + [_Token("end", "", len(text))]


class _Parser:
    """Recursive descent: expr = term (± term)*; term = unary (×÷ unary)*; unary = −unary | power;
    power = atom (^ unary)? (right-associative, so −x^2 = −(x²) and 2^−1 works); atom = number | name
    | function(expr) | (expr)."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0
        self.nodes: list[ExprNode] = []
        self.variables: dict[str, int] = {}

    def parse(self) -> Graph:
        if self.tokens[0].kind == "end":
            raise UserInputError("the expression is empty; type one, e.g. sigmoid(w*x + b)")
        self.expr()
        if self.peek.kind != "end":
            raise UserInputError(f"unexpected {self.peek.text!r} at position {self.peek.position}")
        return Graph(self.text, tuple(self.nodes))

    @property
    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def add(self, op: str, inputs: tuple[int, ...], start: int, position: int, value: float = 0.0) -> int:
        label = self.text[start:self.tokens[self.i - 1].position + len(self.tokens[self.i - 1].text)].strip()
        self.nodes.append(ExprNode(op, inputs, label, position, value))
        return len(self.nodes) - 1

    def expr(self) -> int:
        start = self.peek.position
        left = self.term()
        while self.peek.kind in ("+", "-"):
            op = self.take()
            left = self.add(op.kind, (left, self.term()), start, op.position)
        return left

    def term(self) -> int:
        start = self.peek.position
        left = self.unary()
        while self.peek.kind in ("*", "/"):
            op = self.take()
            left = self.add(op.kind, (left, self.unary()), start, op.position)
        return left

    def unary(self) -> int:
        if self.peek.kind in ("-", "+"):
            op = self.take()
            inner = self.unary()
            return inner if op.kind == "+" else self.add("neg", (inner,), op.position, op.position)
        return self.power()

    def power(self) -> int:
        start = self.peek.position
        base = self.atom()
        if self.peek.kind == "^":
            op = self.take()
            return self.add("^", (base, self.unary()), start, op.position)
        return base

    def atom(self) -> int:
        token = self.take()
        if token.kind == "num":
            return self.add("num", (), token.position, token.position, float(token.text))
        if token.kind == "name":
            if self.peek.kind == "(":
                if token.text not in FUNCTIONS:
                    raise UserInputError(f"unknown function {token.text!r} at position {token.position}; "
                                         f"functions are {', '.join(FUNCTIONS)}")
                self.take()
                inner = self.expr()
                self.expect_close(token.position + len(token.text))
                return self.add(token.text, (inner,), token.position, token.position)
            if token.text in FUNCTIONS:
                raise UserInputError(f"function {token.text!r} at position {token.position} needs parentheses, "
                                     f"e.g. {token.text}(x)")
            if token.text not in self.variables:  # one node per variable: its gradient sums over every use
                self.variables[token.text] = self.add("var", (), token.position, token.position)
            return self.variables[token.text]
        if token.kind == "(":
            inner = self.expr()
            self.expect_close(token.position)
            return inner
        what = "end of the expression" if token.kind == "end" else repr(token.text)
        raise UserInputError(f"unexpected {what} at position {token.position}")

    def expect_close(self, opened: int) -> None:
        if self.peek.kind != ")":
            found = "the end" if self.peek.kind == "end" else repr(self.peek.text)
            raise UserInputError(f"'(' at position {opened} is never closed: expected ')' at position "
                                 f"{self.peek.position}, found {found}")
        self.take()


def parse_expression(text: str) -> Graph:
    """The graph of a scalar expression such as "sigmoid(w*x + b)"; a UserInputError names the bad character."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise UserInputError(f"the expression has {len(text)} characters; at most {MAX_EXPRESSION_CHARS}")
    return _Parser(text).parse()


def _apply(node: ExprNode, args: list[float]) -> float:
    where = f"at position {node.position}"
    op = node.op
    if op == "+":
        return args[0] + args[1]
    if op == "-":
        return args[0] - args[1]
    if op == "*":
        return args[0] * args[1]
    if op == "/":
        if args[1] == 0:
            raise UserInputError(f"division by zero {where}: {node.label} divides by 0")
        return args[0] / args[1]
    if op == "^":
        base, exponent = args
        if base == 0 and exponent < 0:
            raise UserInputError(f"0 to a negative power {where} ({node.label}) divides by zero")
        if base < 0 and not float(exponent).is_integer():
            raise UserInputError(f"a negative base to a non-integer power {where} ({node.label}) is not a real number")
        return base ** exponent
    if op == "neg":
        return -args[0]
    if op == "exp":
        return math.exp(args[0])
    if op == "log":
        if args[0] <= 0:
            raise UserInputError(f"log of a non-positive number {where}: {node.label} has argument {args[0]:g}")
        return math.log(args[0])
    if op == "tanh":
        return math.tanh(args[0])
    if op == "relu":
        return max(args[0], 0.0)
    return _sigmoid(args[0])


def evaluate(graph: Graph, values: Mapping[str, float]) -> list[float]:
    """The value of every node, in graph order, for the variables' `values`."""
    missing = [v for v in graph.variables if v not in values]
    if missing:
        raise UserInputError(f"no value given for {', '.join(missing)}")
    out: list[float] = []
    for node in graph.nodes:
        if node.op == "num":
            result = node.value
        elif node.op == "var":
            result = float(values[node.label])
        else:
            try:
                result = _apply(node, [out[i] for i in node.inputs])
            except OverflowError:
                result = math.inf
        if not math.isfinite(result):
            raise UserInputError(f"{node.label} (at position {node.position}) overflowed: its value is too large")
        out.append(result)
    return out


def _local_derivatives(node: ExprNode, args: list[float], result: float) -> list[float]:
    """∂node/∂input for each input (ReLU's derivative at 0 is 0, as in PyTorch)."""
    op = node.op
    if op == "+":
        return [1.0, 1.0]
    if op == "-":
        return [1.0, -1.0]
    if op == "*":
        return [args[1], args[0]]
    if op == "/":
        return [1 / args[1], -args[0] / args[1] ** 2]
    if op == "^":
        base, exponent = args
        d_base = exponent * base ** (exponent - 1) if exponent != 0 else 0.0
        # b^e = exp(e·log b) needs b > 0; PyTorch's convention where it is not: 0
        return [d_base, result * math.log(base) if base > 0 else 0.0]
    if op == "neg":
        return [-1.0]
    if op == "exp":
        return [result]
    if op == "log":
        return [1 / args[0]]
    if op == "tanh":
        return [1 - result * result]
    if op == "relu":
        return [1.0 if args[0] > 0 else 0.0]
    return [result * (1 - result)]


def gradients(graph: Graph, values: Mapping[str, float]) -> list[float]:
    """∂f/∂node for every node, by reverse mode: each node passes grad × local derivative to its inputs."""
    forward = evaluate(graph, values)
    grads = [0.0] * len(graph.nodes)
    grads[-1] = 1.0
    for k in range(len(graph.nodes) - 1, -1, -1):
        node = graph.nodes[k]
        if node.inputs:
            args = [forward[i] for i in node.inputs]
            for i, local in zip(node.inputs, _local_derivatives(node, args, forward[k])):
                grads[i] += grads[k] * local
    if not all(math.isfinite(g) for g in grads):
        raise UserInputError("a gradient overflowed: the expression is too steep at these values")
    return grads


_TORCH_OPS: dict[str, Callable[..., torch.Tensor]] = {
    "+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div, "^": torch.pow, "neg": torch.neg,
    "exp": torch.exp, "log": torch.log, "tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid,
}


def expression_autograd(graph: Graph, values: Mapping[str, float]) -> tuple[list[float], list[float]]:
    """Every node's value and gradient from torch.autograd (float64), for comparison with the hand-made ones.

    The one difference: the exponent of a negative base gets nan from PyTorch and 0 from `gradients`.
    """
    evaluate(graph, values)  # the same errors for the same bad input
    tensors: list[torch.Tensor] = []
    for node in graph.nodes:
        if node.op in ("num", "var"):
            v = node.value if node.op == "num" else float(values[node.label])
            t = torch.tensor(v, dtype=torch.float64, requires_grad=True)
        else:
            t = _TORCH_OPS[node.op](*(tensors[i] for i in node.inputs))
            t.retain_grad()
        tensors.append(t)
    tensors[-1].backward()
    return [t.item() for t in tensors], [t.grad.item() if t.grad is not None else 0.0 for t in tensors]
