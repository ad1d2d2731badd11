"""Backpropagation step by step: a 2-2-2 network by hand beside torch.autograd, and your own expression's graph."""

from dataclasses import replace

import streamlit as st

from engine import limits
from engine.errors import UserInputError
from engine.training import backprop as bp
from engine.training import expressions as ex
from ui.figures.backprop import chain_rule_latex, comparison_rows, expression_graph, network_graph
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode
from ui.state import UrlField, choice, number, url_state

DEFAULT_EXPRESSION = "sigmoid(w*x + b)"
DEFAULT_VALUES = {"w": 2.0, "x": -1.0, "b": 0.5}
NODE_ORDER = [*bp.OUTPUTS, *bp.HIDDEN, *bp.INPUTS]  # the order backward visits them
NET, STAGE, LOSSES = "bp.net", "bp.stage", "bp.losses"  # the user's current weights; "new"/"forward"/"backward"
FIELDS = [number("bp.x1", "x1", bp.DEFAULT_INPUT[0], -5.0, 5.0), number("bp.x2", "x2", bp.DEFAULT_INPUT[1], -5.0, 5.0),
          number("bp.t1", "t1", bp.DEFAULT_TARGET[0], 0.0, 1.0), number("bp.t2", "t2", bp.DEFAULT_TARGET[1], 0.0, 1.0),
          number("bp.lr", "lr", 0.5, 0.001, 10.0), choice("bp.act", "act", "sigmoid", list(bp.HIDDEN_ACTIVATIONS)),
          choice("bp.node", "node", "o1", NODE_ORDER),
          UrlField("bp.expr", "f", DEFAULT_EXPRESSION, valid=lambda v: len(v) <= limits.MAX_EXPRESSION_CHARS)]


def _variable_fields() -> list[UrlField]:
    """One URL-backed number per variable of the expression as it stands (none while it does not parse)."""
    try:
        names = ex.parse_expression(st.session_state.get("bp.expr", st.query_params.get("f", DEFAULT_EXPRESSION))).variables
    except UserInputError:
        return []
    return [number(f"bp.var.{n}", f"v_{n}", DEFAULT_VALUES.get(n, 1.0), -100.0, 100.0) for n in names]


def network_controls_ui() -> tuple[tuple[float, float], tuple[float, float], float, str]:
    a, b, c, d, e, f = st.columns(6)
    x = (a.number_input("x₁", -5.0, 5.0, key="bp.x1", step=0.05, help="The first input."),
         b.number_input("x₂", -5.0, 5.0, key="bp.x2", step=0.05, help="The second input."))
    t = (c.number_input("target t₁", 0.0, 1.0, key="bp.t1", step=0.01, help="What o₁ should be."),
         d.number_input("target t₂", 0.0, 1.0, key="bp.t2", step=0.01, help="What o₂ should be."))
    lr = e.number_input("learning rate", 0.001, 10.0, key="bp.lr", step=0.1, format="%.3f",
                        help="SGD step: w ← w − lr · ∂L/∂w.")
    act = f.selectbox("hidden activation", bp.HIDDEN_ACTIVATIONS, key="bp.act",
                      help="The outputs are always sigmoids.")
    return x, t, lr, act


def _advance(stage: str, x, t, lr: float) -> None:
    """A button's effect on the session's network: show forward, show backward, or take one SGD step."""
    net = st.session_state[NET]
    if stage == "step":
        forward = bp.forward_table(net, x=x, target=t)
        st.session_state[LOSSES].append(forward.loss)
        st.session_state[NET] = bp.sgd_step(net, bp.backward_table(net, forward), lr=lr)
        stage = "forward"
    st.session_state[STAGE] = stage


def render_network() -> None:
    x, t, lr, act = network_controls_ui()
    cols = st.columns(4)
    if cols[3].button("Reset weights", key="bp.reset", help="Back to the lecture's numbers.", width="stretch") \
            or NET not in st.session_state:
        st.session_state.update({NET: bp.TinyNet(), STAGE: "new", LOSSES: []})
    st.session_state[NET] = replace(st.session_state[NET], activation=act)
    for col, (label, stage, help_) in zip(cols, [("1 · Forward", "forward", "Compute every z and a, then the loss."),
                                                 ("2 · Backward", "backward", "Send ∂L/∂z back, node by node."),
                                                 ("3 · SGD step", "step", "Update every weight, then run forward again.")]):
        if col.button(label, key=f"bp.{stage}", help=help_, width="stretch"):
            _advance(stage, x, t, lr)
    net, stage = st.session_state[NET], st.session_state[STAGE]
    forward = bp.forward_table(net, x=x, target=t) if stage != "new" else None
    backward = bp.backward_table(net, forward) if stage == "backward" else None
    if forward is not None:
        losses = st.session_state[LOSSES]
        st.metric("Loss L = ½ Σ (t − o)²", f"{forward.loss:.6f}", help="After the SGD steps taken so far.",
                  delta=f"{forward.loss - losses[-1]:.6f}" if losses else None, delta_color="inverse")
        st.caption(f"{len(losses)} SGD step(s) taken.")
    node = st.selectbox("Node for the chain rule", NODE_ORDER, key="bp.node", disabled=backward is None,
                        help="Its gradient written out with the numbers of this network.")
    st.plotly_chart(network_graph(net, forward, backward, selected=node, presenter=presenter_mode()),
                    width="stretch")
    if backward is None:
        st.info("Press **Forward**, then **Backward** to see the gradients." if forward is None
                else "Press **Backward** to send the gradient back from the loss.")
        return
    for line in chain_rule_latex(net, forward, backward, node):
        st.latex(line)
    st.subheader("Every number beside torch.autograd")
    st.dataframe(comparison_rows(forward, backward, bp.network_autograd(net, x=x, target=t)), hide_index=True,
                 width="stretch", column_config={"difference": st.column_config.NumberColumn(format="%.1e")})


def render_expression(fields: list[UrlField]) -> None:
    text = st.text_input("Expression f", key="bp.expr", max_chars=limits.MAX_EXPRESSION_CHARS,
                         help="+ − × ÷ (or * /), ^ or **, parentheses, numbers, names, exp log tanh relu sigmoid.")
    try:
        graph = ex.parse_expression(text)
        cols = st.columns(min(max(len(fields), 1), 6))
        values = {f.param[2:]: cols[i % len(cols)].number_input(f.param[2:], -100.0, 100.0, key=f.key, step=0.1,
                  help="The value of this variable.") for i, f in enumerate(fields)}
        if set(values) != set(graph.variables):  # the text changed in this run: its inputs come next run
            st.rerun()
        grads = ex.gradients(graph, values)
        forward = ex.evaluate(graph, values)
        torch_values, torch_grads = ex.expression_autograd(graph, values)
    except UserInputError as error:
        st.error(f"{error}\n\n`{text}`")
        return
    st.plotly_chart(expression_graph(graph, forward, grads, presenter=presenter_mode()), width="stretch")
    st.latex(r"\frac{\partial f}{\partial \text{input}} = \frac{\partial f}{\partial \text{node}} \cdot "
             r"\frac{\partial \text{node}}{\partial \text{input}}\quad\text{(summed over every use of the input)}")
    st.dataframe([{"node": n.label, "value": v, "∂f/∂node": g, "autograd value": tv, "autograd ∂f/∂node": tg}
                  for n, v, g, tv, tg in zip(graph.nodes, forward, grads, torch_values, torch_grads)],
                 hide_index=True, width="stretch")


st.title("Backpropagation step by step")
lesson_link_ui("app_pages/training/backprop.py")
st.markdown("Backpropagation is the chain rule, applied node by node from the loss backwards: each node "
            "multiplies the gradient arriving from above (**upstream**) by its own **local** derivative and "
            "passes the product on. Every number here is computed by hand and checked against `torch.autograd`.")
variable_fields = _variable_fields()
with url_state(FIELDS + variable_fields):
    network_tab, expression_tab = st.tabs(["Tiny network", "Your own expression"])
    with network_tab:
        render_network()
    with expression_tab:
        render_expression(variable_fields)
    st.page_link("app_pages/building_blocks/gradient_flow.py", icon=":material/trending_down:",
                 label="Vanishing gradients are this product of local derivatives, repeated layer after layer: "
                       "see Gradients & initialization")
