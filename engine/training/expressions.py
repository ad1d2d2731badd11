"""Micrograd-style scalar expressions: parse `sigmoid(w*x + b)`, then every node's value and gradient.

A small recursive-descent parser (no `eval`) builds a graph of operations; `evaluate` runs it
forward, `gradients` backward by reverse mode, and `expression_autograd` computes the same with
torch.autograd for comparison. Bad input raises UserInputError pointing at the character.

References:
    Andrej Karpathy, micrograd, https://github.com/karpathy/micrograd
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from engine import limits
from engine.errors import UserInputError



def stable_sigmoid(z: float) -> float:
    # the two branches keep exp from overflowing for large |z|
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


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
    if len(text) > limits.MAX_EXPRESSION_CHARS:
        raise UserInputError(f"the expression has {len(text)} characters; at most {limits.MAX_EXPRESSION_CHARS}")
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
    return stable_sigmoid(args[0])


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
