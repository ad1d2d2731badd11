"""AppTest of the backpropagation page: forward, backward, SGD steps, expressions good and bad, random widgets."""

from engine.training import backprop as bp
from tests.apptest_helpers import assert_no_exception, chart_text, randomize_widgets, run_page

PAGE = "app_pages/training/backprop.py"


def _loss(at) -> float:
    return float(at.metric[0].value)



def test_forward_backward_and_a_step_lower_the_loss():
    at = run_page(PAGE)
    assert not at.metric and not any(r"\delta" in x.value for x in at.latex)
    at.button(key="bp.forward").click().run()
    assert_no_exception(at, "forward")
    assert _loss(at) == round(bp.forward_table(bp.TinyNet()).loss, 6)  # 0.298371, Mazur's number
    at.button(key="bp.backward").click().run()
    assert_no_exception(at, "backward")
    assert any("0.138499" in x.value for x in at.latex)  # δ of o₁
    table = at.dataframe[0].value
    assert table["difference"].max() < 1e-12 and len(table) > 20
    before = _loss(at)
    at.button(key="bp.step").click().run()
    assert_no_exception(at, "step")
    after = _loss(at)
    assert after < before
    at.button(key="bp.step").click().run()
    assert _loss(at) < after
    at.button(key="bp.backward").click().run()
    at.selectbox(key="bp.node").set_value("h1").run()
    assert any(r"\delta_{h_1}" in x.value for x in at.latex)
    at.button(key="bp.reset").click().run()
    assert not at.metric


def test_deep_link_sets_inputs_and_expression():
    at = run_page(PAGE, query_params={"act": "relu", "x1": "1.0", "f": "x^2 + y", "v_x": "3"})
    assert at.selectbox(key="bp.act").value == "relu"
    assert at.number_input(key="bp.var.x").value == 3.0
    assert at.number_input(key="bp.var.y").value == 1.0
    table = at.dataframe[0].value
    assert table["value"].iloc[-1] == 10.0 and table["∂f/∂node"].iloc[0] == 6.0  # ∂(x²+y)/∂x = 2x


def test_bad_expressions_show_a_message_not_an_exception():
    at = run_page(PAGE)
    assert "sigmoid" in chart_text(at)
    for text, message in [("(w*x + b))", "unexpected ')' at position 9"), ("1/(x - x)", "division by zero"),
                          ("log(x)", "log of a non-positive"), ("exp(-x)^800", "overflowed"), ("x @ 2", "'@'")]:
        at.text_input(key="bp.expr").set_value(text).run()
        assert_no_exception(at, text)
        assert any(message in e.value for e in at.error), (text, [e.value for e in at.error])
    at.text_input(key="bp.expr").set_value("tanh(a) * c").run()
    assert not at.error and at.number_input(key="bp.var.c")


def test_random_widgets_and_expressions():
    at = run_page(PAGE)
    at.button(key="bp.forward").click().run()
    texts = ["sigmoid(w*x + b)", "relu(a) - a^2", "(x", "log(x)", "exp(x*y) / y", "2 ** x ** 2", "q"]
    randomize_widgets(at, rounds=6, seed=3, text_values={"bp.expr": texts},
                      allowed_errors=["position", "overflowed", "non-positive", "no value"])
