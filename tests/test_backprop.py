"""Backprop by hand: the tiny network's tables and the expression graphs equal torch.autograd."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
import torch

from engine.errors import UserInputError
from engine.training import backprop as bp
from engine.training import expressions as ex

NODES = (*bp.INPUTS, *bp.HIDDEN, *bp.OUTPUTS)


def _random_net(rng: random.Random, activation: str) -> bp.TinyNet:
    return replace(bp.TinyNet(activation=activation), **{k: rng.gauss(0, 1) for k in bp.TinyNet().parameters()})


def test_default_network_matches_mazurs_worked_example():
    net = bp.TinyNet()
    forward = bp.forward_table(net)
    assert forward.nodes["h1"].pre_activation == pytest.approx(0.3775)
    assert forward.nodes["h1"].activation == pytest.approx(0.593269992)
    assert forward.nodes["o1"].activation == pytest.approx(0.75136507)
    assert forward.loss == pytest.approx(0.298371109)
    backward = bp.backward_table(net, forward)
    assert backward.parameters["w5"] == pytest.approx(0.082167041)
    assert backward.parameters["w1"] == pytest.approx(0.000438568)
    assert backward.nodes["o1"].upstream == pytest.approx(0.74136507)


@pytest.mark.parametrize("activation", bp.HIDDEN_ACTIVATIONS)
@pytest.mark.parametrize("seed", range(15))
def test_tables_equal_autograd_for_random_networks(seed, activation):
    rng = random.Random(seed)
    net = _random_net(rng, activation)
    x = (rng.uniform(-2, 2), rng.uniform(-2, 2))
    target = (rng.random(), rng.random())
    forward = bp.forward_table(net, x=x, target=target)
    backward = bp.backward_table(net, forward)
    check = bp.network_autograd(net, x=x, target=target)
    assert forward.loss == pytest.approx(check.loss, rel=1e-12)
    for name in NODES:
        assert forward.nodes[name].pre_activation == pytest.approx(check.pre_activation[name], abs=1e-12)
        assert forward.nodes[name].activation == pytest.approx(check.activation[name], abs=1e-12)
        assert backward.nodes[name].grad == pytest.approx(check.grad[name], abs=1e-12)
        assert backward.nodes[name].upstream == pytest.approx(check.upstream[name], abs=1e-12)
        node = backward.nodes[name]
        assert node.grad == pytest.approx(node.upstream * node.local)
    for name, grad in backward.parameters.items():
        assert grad == pytest.approx(check.parameters[name], abs=1e-12), name


@pytest.mark.parametrize("seed", range(5))
def test_sgd_step_equals_torch_sgd_and_lowers_the_loss(seed):
    rng = random.Random(seed)
    net = _random_net(rng, "sigmoid")
    forward = bp.forward_table(net)
    stepped = bp.sgd_step(net, bp.backward_table(net, forward), lr=0.1)
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in net.parameters().items()}
    for name, grad in bp.network_autograd(net).parameters.items():
        params[name].grad = torch.tensor(grad, dtype=torch.float64)
    torch.optim.SGD(params.values(), lr=0.1).step()
    for name, value in stepped.parameters().items():
        assert value == pytest.approx(params[name].item(), abs=1e-12)
    assert bp.forward_table(stepped).loss < forward.loss  # a small step down the gradient


def test_network_rejects_bad_settings():
    with pytest.raises(UserInputError, match="activation"):
        bp.TinyNet(activation="softmax")
    with pytest.raises(UserInputError, match="learning rate"):
        bp.sgd_step(bp.TinyNet(), bp.backward_table(bp.TinyNet(), bp.forward_table(bp.TinyNet())), lr=-1)
    with pytest.raises(UserInputError, match="overflowed"):
        bp.forward_table(replace(bp.TinyNet(), w1=1e308, w2=1e308), x=(10.0, 10.0))


# ---- expressions ----------------------------------------------------------------------------
VARIABLES = ("a", "b", "c")
_MUL = ("*", "×", "·")
_DIV = ("/", "÷")
_POW = ("^", "**")


def _random_expression(rng: random.Random, depth: int):
    """(text, torch function of the variables) built from the grammar, kept inside every function's domain."""
    if depth == 0 or rng.random() < 0.2:
        if rng.random() < 0.25:
            number = rng.choice((0.5, 2.0, 3.0, 1.5))
            return f"{number:g}", lambda v: torch.tensor(number, dtype=torch.float64)
        name = rng.choice(VARIABLES)
        return name, lambda v: v[name]
    kind = rng.choice(("+", "-", "*", "/", "pow", "neg", "exp", "log", "tanh", "relu", "sigmoid"))
    left, f = _random_expression(rng, depth - 1)
    if kind in ("tanh", "relu", "sigmoid"):
        return f"{kind}({left})", lambda v: getattr(torch, kind)(f(v))
    if kind == "exp":  # a tanh inside keeps nested exps finite
        return f"exp(tanh({left}))", lambda v: torch.exp(torch.tanh(f(v)))
    if kind == "log":
        return f"log(({left})^2 + 0.5)", lambda v: torch.log(f(v) ** 2 + 0.5)
    if kind == "neg":
        return f"−({left})", lambda v: -f(v)
    if kind == "pow":
        k = rng.choice((2, 3))
        return f"({left}){rng.choice(_POW)}{k}", lambda v: f(v) ** k
    right, g = _random_expression(rng, depth - 1)
    if kind == "/":
        return f"({left}) {rng.choice(_DIV)} (({right})^2 + 1)", lambda v: f(v) / (g(v) ** 2 + 1)
    symbol = {"+": "+", "-": rng.choice(("-", "−")), "*": rng.choice(_MUL)}[kind]
    ops = {"+": torch.add, "-": torch.sub, "*": torch.mul}
    return f"({left}) {symbol} ({right})", lambda v: ops[kind](f(v), g(v))


@pytest.mark.parametrize("seed", range(40))
def test_expression_values_and_gradients_equal_autograd(seed):
    rng = random.Random(seed)
    text, f = _random_expression(rng, depth=4)
    values = {name: rng.uniform(-1.5, 1.5) for name in VARIABLES}
    graph = ex.parse_expression(text)
    forward = ex.evaluate(graph, values)
    grads = ex.gradients(graph, values)
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in values.items()}
    out = f(leaves)
    if out.requires_grad:  # not when the random expression holds numbers only
        out.backward()
    assert forward[-1] == pytest.approx(out.item(), rel=1e-10, abs=1e-12), text
    for node, grad in zip(graph.nodes, grads):
        if node.op == "var":
            expected = leaves[node.label].grad
            assert grad == pytest.approx(expected.item() if expected is not None else 0.0, abs=1e-10), text
    torch_values, torch_grads = ex.expression_autograd(graph, values)
    assert torch_values == pytest.approx(forward, abs=1e-10)
    # b^e has no derivative in e where b < 0: PyTorch says nan, we say 0
    undefined = {n.inputs[1] for n in graph.nodes if n.op == "^" and forward[n.inputs[0]] < 0}
    assert {i for i, g in enumerate(torch_grads) if math.isnan(g)} <= undefined
    assert [g for i, g in enumerate(torch_grads) if i not in undefined] == pytest.approx(
        [g for i, g in enumerate(grads) if i not in undefined], abs=1e-10)


@pytest.mark.parametrize("text, value", [
    ("-x^2", -9.0), ("2^3^2", 512.0), ("2**-1", 0.5), ("1 - 2 - 3", -4.0), ("8/4/2", 1.0),
    ("2*3 + 4*5", 26.0), ("2 × x ÷ 4", 1.5), ("−x + -(-x)", 0.0), ("sigmoid(0) + relu(-x) + tanh(0)", 0.5),
    ("log(exp(x))", 3.0), ("x*x", 9.0), (".5e1", 5.0),
])
def test_expression_precedence_and_spellings(text, value):
    assert ex.evaluate(ex.parse_expression(text), {"x": 3.0})[-1] == pytest.approx(value)


def test_a_variable_used_twice_is_one_node_whose_gradient_sums_both_uses():
    graph = ex.parse_expression("x*x + x")
    assert graph.variables == ["x"]
    grads = ex.gradients(graph, {"x": 3.0})
    assert grads[[n.op for n in graph.nodes].index("var")] == pytest.approx(7.0)


BAD = ["", "   ", "(", ")", "x)", "(x", "(x + 1))", "x +", "+", "* x", "x y", "2 3", "x $ y", "x ** ",
       "sin(x)", "exp", "exp()", "relu(x, y)", "log(0)", "log(-x)", "1/0", "x / (y - y)", "exp(1000)",
       "10^400", "(-8)^0.5", "0^-1", "1.2.3", "1e400", "é", "x" * 300, "(" * 60 + "x" + ")" * 59,
       "exp(exp(exp(exp(10))))", "x = 1", "x!", "2 ^", "sigmoid(", "[x]", "x\n)"]


@pytest.mark.parametrize("text", BAD)
def test_bad_expressions_raise_user_input_error_only(text):
    with pytest.raises(UserInputError) as error:
        graph = ex.parse_expression(text)
        values = dict.fromkeys(graph.variables, 1.0)
        ex.gradients(graph, values)
        ex.expression_autograd(graph, values)
    assert str(error.value)


def test_parse_errors_point_at_the_character():
    with pytest.raises(UserInputError, match=r"unexpected '\)' at position 7"):
        ex.parse_expression("(x + 1))")
    with pytest.raises(UserInputError, match=r"unexpected '\$' at position 2"):
        ex.parse_expression("x $ y")
    with pytest.raises(UserInputError, match="position 0 is never closed"):
        ex.parse_expression("(x + 1")
    with pytest.raises(UserInputError, match="division by zero at position 2"):
        ex.evaluate(ex.parse_expression("x / (y - y)"), {"x": 1, "y": 2})
    with pytest.raises(UserInputError, match="no value given for y"):
        ex.evaluate(ex.parse_expression("x + y"), {"x": 1})


def test_relu_derivative_at_zero_is_zero_as_in_pytorch():
    graph = ex.parse_expression("relu(x)")
    assert ex.gradients(graph, {"x": 0.0})[0] == 0.0 == ex.expression_autograd(graph, {"x": 0.0})[1][0]
    assert math.isclose(ex.gradients(ex.parse_expression("sigmoid(x)"), {"x": 0.0})[0], 0.25)
