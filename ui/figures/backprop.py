"""Figures for backpropagation: the tiny network and an expression as computational graphs, the chain rule in LaTeX.

Pure builders: the engine's tables in, `go.Figure`, LaTeX strings or table rows out.

References:
    Plotly network graphs, https://plotly.com/python/network-graphs/
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from engine.training import backprop as bp
from engine.training import expressions as ex
from ui.figures.train import PALETTE, apply_theme

_POSITIONS = {"x1": (0, 1), "x2": (0, 0), "h1": (1, 1), "h2": (1, 0), "o1": (2, 1), "o2": (2, 0)}
_TEX = {"x1": "x_1", "x2": "x_2", "h1": "h_1", "h2": "h_2", "o1": "o_1", "o2": "o_2"}
_LOCAL_TEX = {"sigmoid": r"a(1-a)", "tanh": r"1-a^2", "relu": r"\mathbb{1}[z>0]"}
_OP_TEXT = {"+": "+", "-": "−", "*": "×", "/": "÷", "^": "^", "neg": "−x"}
_EDGE_COLOUR, _GRAD_COLOUR = "rgba(128, 128, 128, 0.6)", PALETTE[5]


def _node_trace(xs: list[float], ys: list[float], texts: list[str], hovers: list[str], colours: list[str],
                size: int) -> go.Scatter:
    return go.Scatter(x=xs, y=ys, mode="markers+text", text=texts, textposition="middle center",
                      hovertext=hovers, hoverinfo="text", showlegend=False,
                      marker=dict(size=size, color=colours, line=dict(width=2, color="#444")))


def _edge_traces(pairs: Sequence[tuple[tuple[float, float], tuple[float, float]]]) -> go.Scatter:
    xs, ys = [], []
    for (x0, y0), (x1, y1) in pairs:
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=_EDGE_COLOUR, width=2), hoverinfo="skip",
                      showlegend=False)


def _frame(fig: go.Figure, title: str, height: int, presenter: bool) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=50, b=10))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return apply_theme(fig, presenter)


def network_graph(net: bp.TinyNet, forward: bp.ForwardTable | None, backward: bp.BackwardTable | None, *,
                  selected: str | None = None, presenter: bool = False) -> go.Figure:
    """Inputs, hidden units and outputs with every weight on its edge; z and a once forward, ∂L/∂z once backward."""
    fig = go.Figure(_edge_traces([(_POSITIONS[s], _POSITIONS[d]) for s, d, _ in bp.EDGES]))
    for (s, d, w), share in zip(bp.EDGES, (0.25, 0.25, 0.25, 0.25, 0.3, 0.3, 0.3, 0.3)):
        (x0, y0), (x1, y1) = _POSITIONS[s], _POSITIONS[d]
        text = f"{w} = {getattr(net, w):.3f}"
        if backward is not None:
            text += f"<br><span style='color:{_GRAD_COLOUR}'>∂L/∂{w} = {backward.parameters[w]:.4f}</span>"
        fig.add_annotation(x=x0 + share * (x1 - x0), y=y0 + share * (y1 - y0), text=text, showarrow=False,
                           bgcolor="rgba(255,255,255,0.7)", font=dict(size=11))
    names = list(_POSITIONS)
    texts, hovers = [], []
    for name in names:
        bias = f"<br>{bp.BIASES[name]} = {getattr(net, bp.BIASES[name]):.3f}" if name in bp.BIASES else ""
        lines = [f"<b>{name}</b>{bias}"]
        if forward is not None:
            node = forward.nodes[name]
            lines.append(f"a = {node.activation:.4f}" if name in bp.INPUTS
                         else f"z = {node.pre_activation:.4f}<br>a = {node.activation:.4f}")
        if backward is not None:
            lines.append(f"∂L/∂z = {backward.nodes[name].grad:.4f}")
        texts.append("<br>".join(lines))
        hovers.append(texts[-1])
    colours = [PALETTE[1] if n == selected else ("#cfe3f3" if n in bp.INPUTS else "#e6f2e6") for n in names]
    fig.add_trace(_node_trace([_POSITIONS[n][0] for n in names], [_POSITIONS[n][1] for n in names], texts,
                              hovers, colours, 110))
    if forward is not None:
        targets = ", ".join(f"t{i + 1} = {t:g}" for i, t in enumerate(forward.target))
        fig.add_annotation(x=2.55, y=0.5, text=f"<b>L = {forward.loss:.6f}</b><br>{targets}", showarrow=False,
                           font=dict(size=13))
    fig.update_xaxes(range=[-0.35, 2.9])
    fig.update_yaxes(range=[-0.4, 1.4])
    return _frame(fig, f"2-2-2 network, hidden activation {net.activation}", 460, presenter)


def _num(value: float, digits: int = 4) -> str:
    return f"({value:.{digits}f})" if value < 0 else f"{value:.{digits}f}"


def chain_rule_latex(net: bp.TinyNet, forward: bp.ForwardTable, backward: bp.BackwardTable, node: str) -> list[str]:
    """The chain rule for `node`, with the numbers: its ∂L/∂z, then the gradient of each weight into it."""
    n, g, tex = backward.nodes[node], backward.nodes, _TEX[node]
    if node in bp.OUTPUTS:
        t = forward.target[bp.OUTPUTS.index(node)]
        symbolic, numbers = rf"({tex} - t_{node[1]})", rf"({forward.nodes[node].activation:.4f} - {t:g})"
    else:
        outs = [(dst, w) for s, dst, w in bp.EDGES if s == node]
        symbolic = "(" + " + ".join(rf"{w[0]}_{w[1]}\,\delta_{{{_TEX[d]}}}" for d, w in outs) + ")"
        numbers = "(" + " + ".join(rf"{_num(getattr(net, w), 3)} \cdot {_num(g[d].grad)}" for d, w in outs) + ")"
    if node in bp.INPUTS:
        return [rf"\frac{{\partial L}}{{\partial {tex}}} = {symbolic} = {numbers} = {n.grad:.6f}"]
    act = net.activation if node in bp.HIDDEN else "sigmoid"
    lines = [rf"\delta_{{{tex}}} = \frac{{\partial L}}{{\partial z_{{{tex}}}}} = "
             rf"\underbrace{{\frac{{\partial L}}{{\partial {tex}}}}}_{{\text{{upstream}}}}\cdot"
             rf"\underbrace{{\frac{{\partial {tex}}}{{\partial z_{{{tex}}}}}}}_{{\text{{local}}}} = "
             rf"{symbolic}\cdot {_LOCAL_TEX[act]} = {numbers} \cdot {n.local:.4f} = {n.grad:.6f}"]
    for s, d, w in bp.EDGES:
        if d == node:
            lines.append(rf"\frac{{\partial L}}{{\partial {w[0]}_{w[1]}}} = {_TEX[s]}\cdot\delta_{{{tex}}} = "
                         rf"{_num(forward.nodes[s].activation)} \cdot {_num(n.grad)} = {backward.parameters[w]:.6f}")
    b = bp.BIASES[node]
    lines.append(rf"\frac{{\partial L}}{{\partial {b[0]}_{b[1]}}} = \delta_{{{tex}}} = {backward.parameters[b]:.6f}")
    return lines


def comparison_rows(forward: bp.ForwardTable, backward: bp.BackwardTable, check: bp.AutogradCheck) -> list[dict]:
    """One row per number: what the tables say, what torch.autograd says, and the difference."""
    rows = [("loss L", forward.loss, check.loss)]
    for name in (*bp.INPUTS, *bp.HIDDEN, *bp.OUTPUTS):
        if name in bp.INPUTS:  # an input's a is its z
            rows.append((f"∂L/∂{name}", backward.nodes[name].grad, check.grad[name]))
            continue
        rows += [(f"z of {name}", forward.nodes[name].pre_activation, check.pre_activation[name]),
                 (f"a of {name}", forward.nodes[name].activation, check.activation[name]),
                 (f"∂L/∂a of {name}", backward.nodes[name].upstream, check.upstream[name]),
                 (f"∂L/∂z of {name}", backward.nodes[name].grad, check.grad[name])]
    rows += [(f"∂L/∂{k}", v, check.parameters[k]) for k, v in backward.parameters.items()]
    return [{"quantity": q, "by hand": mine, "torch.autograd": theirs, "difference": abs(mine - theirs)}
            for q, mine, theirs in rows]


def _depths(graph: ex.Graph) -> list[int]:
    depth: list[int] = []
    for node in graph.nodes:
        depth.append(1 + max((depth[i] for i in node.inputs), default=-1))
    return depth


def expression_graph(graph: ex.Graph, values: Sequence[float], grads: Sequence[float], *,
                     presenter: bool = False) -> go.Figure:
    """The expression's graph left (variables, numbers) to right (the result); each node's value and gradient."""
    depth = _depths(graph)
    columns: dict[int, list[int]] = {}
    for k, d in enumerate(depth):
        columns.setdefault(d, []).append(k)
    pos = {k: (d, i - (len(ks) - 1) / 2) for d, ks in columns.items() for i, k in enumerate(ks)}
    fig = go.Figure(_edge_traces([(pos[i], pos[k]) for k, n in enumerate(graph.nodes) for i in n.inputs]))
    texts, hovers, colours = [], [], []
    for k, node in enumerate(graph.nodes):
        name = node.label if node.op in ("num", "var") else _OP_TEXT.get(node.op, node.op)
        texts.append(f"<b>{name}</b><br>{values[k]:.4g}<br><span style='color:{_GRAD_COLOUR}'>∂ {grads[k]:.4g}</span>")
        hovers.append(f"{node.label}<br>value {values[k]:.6g}<br>∂f/∂node {grads[k]:.6g}")
        colours.append("#cfe3f3" if node.op == "var" else ("#eeeeee" if node.op == "num" else "#e6f2e6"))
    fig.add_trace(_node_trace([pos[k][0] for k in pos], [pos[k][1] for k in pos], texts, hovers, colours, 80))
    tallest = max(len(ks) for ks in columns.values())
    fig.update_xaxes(range=[-0.6, max(depth) + 0.6])
    fig.update_yaxes(range=[-tallest / 2 - 0.2, tallest / 2 + 0.2])
    return _frame(fig, f"f = {graph.text}   (value, then ∂f/∂node)", 140 + 90 * tallest, presenter)
