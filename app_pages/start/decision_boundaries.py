"""Decision boundaries: where a linear classifier fails on 2-D data, and how hidden units cut the plane to fix it."""

import streamlit as st

from engine import limits
from engine.models.blocks import activation_info, activation_names
from engine.training import toy2d
from engine.training.optimizers import build_optimizer, optimizer_info, optimizer_names
from ui.figures import toy2d as figs
from ui.lessons import lesson_link_ui
from ui.points_editor import own_points_ui
from ui.sidebar import presenter_mode, seed
from ui.state import UrlField, choice, flag, items, number, url_state

P = "db"
RATES = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
RESOLUTION, TILE_RESOLUTION = 100, 40  # grid points per side: regions, unit tiles
FIELDS = [choice(f"{P}.data", "data", "quadrants", toy2d.toy_names()), number(f"{P}.noise", "noise", 0.1, 0.0, 1.0),
          number(f"{P}.points", "n", 400, limits.MIN_TOY_POINTS, limits.MAX_TOY_POINTS, int),
          number(f"{P}.test", "test", 0.3, 0.0, 0.9), flag(f"{P}.mlp", "mlp", True),
          number(f"{P}.layers", "layers", 2, 1, limits.MAX_TOY_HIDDEN_LAYERS, int),
          number(f"{P}.units", "units", 8, 1, limits.MAX_TOY_UNITS, int),
          choice(f"{P}.act", "act", "tanh", activation_names()), items(f"{P}.feat", "feat", [], toy2d.FEATURES.names()),
          choice(f"{P}.opt", "opt", "adam", optimizer_names()), UrlField(f"{P}.lr", "lr", 0.03, float, RATES.__contains__),
          number(f"{P}.steps", "steps", 10, 1, 100, int)]


@st.cache_data(max_entries=32)
def _data(name: str, n_points: int, noise: float, test_share: float, seed_value: int) -> tuple[toy2d.Split, float]:
    x, y = toy2d.make(name, n_points=n_points, noise=noise, seed=seed_value)
    data = toy2d.split(x, y, test_share=test_share, seed=seed_value)
    return data, toy2d.linear_accuracy(data.x_train, data.y_train)


def data_ui() -> tuple[toy2d.Split, float]:
    a, b, c, d = st.columns(4)
    name = a.selectbox("Data set", toy2d.toy_names(), key=f"{P}.data", format_func=lambda n: toy2d.toy_info(n).title,
                       help="The first three are the lecture's hard cases for a linear classifier.")
    noise = b.slider("Noise", 0.0, 1.0, key=f"{P}.noise", step=0.05, help="How far points scatter from the clean shape.")
    points = c.slider("Points", limits.MIN_TOY_POINTS, limits.MAX_TOY_POINTS, key=f"{P}.points", step=20,
                      help=f"At most {limits.MAX_TOY_POINTS:,}, so every step stays a few milliseconds.")
    share = d.slider("Test share", 0.0, 0.9, key=f"{P}.test", step=0.05, help="Held-out points (hollow), never trained on.")
    st.caption(toy2d.toy_info(name).note)
    return _data(name, points, noise, share, seed())


def model_ui() -> tuple[toy2d.ToyNet, str]:
    a, b, c, d, e = st.columns([1, 1, 1, 1, 2])
    mlp = a.toggle("Hidden layers", key=f"{P}.mlp", help="Off: the linear softmax classifier, one line between the classes.")
    layers = b.slider("Layers", 1, limits.MAX_TOY_HIDDEN_LAYERS, key=f"{P}.layers", disabled=not mlp, help="Hidden layers.")
    units = c.slider("Units", 1, limits.MAX_TOY_UNITS, key=f"{P}.units", disabled=not mlp, help="Units per hidden layer.")
    act = d.selectbox("Activation", activation_names(), key=f"{P}.act", disabled=not mlp,
                      format_func=lambda n: activation_info(n).title, help="After every hidden layer.")
    features = e.multiselect("Extra input features", toy2d.FEATURES.names(), key=f"{P}.feat",
                             format_func=toy2d.FEATURE_TITLES.get, help="Fed in beside x and y, as in the Playground.")
    f, g, h = st.columns(3)
    opt = f.selectbox("Optimizer", optimizer_names(), key=f"{P}.opt", format_func=lambda n: optimizer_info(n).title,
                      help="torch.optim, full batch.")
    g.select_slider("Learning rate", RATES, key=f"{P}.lr", help="Too large and the loss explodes: training stops.")
    h.slider("Steps per update", 1, 100, key=f"{P}.steps", help="Training steps between two redraws.")
    return toy2d.ToyNet(hidden=(units,) * layers if mlp else (), activation=act, features=tuple(features)), opt


def _session(data: toy2d.Split, config: toy2d.ToyNet, opt: str, settings: tuple) -> dict:
    """This user's model, optimizer and curves, rebuilt when the data or model settings change."""
    state = st.session_state.get(f"{P}.run")
    if state is None or state["settings"] != settings:
        model = toy2d.build_model(config, seed=seed())
        optimizer = build_optimizer(opt, model.parameters(), lr=st.session_state[f"{P}.lr"])
        state = {"settings": settings, "model": model, "optimizer": optimizer, "losses": [], "test": [],
                 "diverged": False}
        st.session_state[f"{P}.run"] = state
    return state


def train_panel(data: toy2d.Split, config: toy2d.ToyNet, opt: str, settings: tuple, linear: float) -> None:
    state = _session(data, config, opt, settings)
    a, b, _ = st.columns([1, 1, 4])
    if b.button("Reset", key=f"{P}.reset", help="New initial weights (from the sidebar's seed), curves cleared."):
        st.session_state.pop(f"{P}.run")
        state = _session(data, config, opt, settings)
    stepped = a.button("Step", key=f"{P}.step", help="Train one update: 'Steps per update' full-batch steps.")
    if (stepped or st.session_state.get(f"{P}.play")) and not state["diverged"]:
        for group in state["optimizer"].param_groups:
            group["lr"] = st.session_state[f"{P}.lr"]
        result = toy2d.train_steps(state["model"], state["optimizer"], data.x_train, data.y_train,
                                   steps=st.session_state[f"{P}.steps"])
        state["losses"] += result.losses
        state["diverged"] = result.diverged
        state["test"].append((len(state["losses"]), toy2d.evaluate(state["model"], data.x_test, data.y_test).loss))
    if state["diverged"]:
        st.warning("The loss exploded at this learning rate: training stopped with the last good weights. "
                   "Lower the learning rate and press Reset.")
    draw(state, data, config, linear)


def draw(state: dict, data: toy2d.Split, config: toy2d.ToyNet, linear: float) -> None:
    model, presenter = state["model"], presenter_mode()
    train, test = toy2d.evaluate(model, data.x_train, data.y_train), toy2d.evaluate(model, data.x_test, data.y_test)
    a, b, c, d = st.columns(4)
    a.metric("Steps", len(state["losses"]))
    b.metric("Train loss", f"{train.loss:.4f}")
    c.metric("Train accuracy", f"{train.accuracy:.1%}")
    d.metric("Test accuracy", "–" if len(data.x_test) == 0 else f"{test.accuracy:.1%}")
    bounds = toy2d.bounds_of(data.x_train, data.x_test)
    grid = toy2d.decision_grid(model, bounds, RESOLUTION)
    left, right = st.columns([3, 2])
    left.plotly_chart(figs.decision_regions(grid.xs, grid.ys, grid.values[1], (data.x_train.numpy(), data.y_train.numpy()),
                                            (data.x_test.numpy(), data.y_test.numpy()), presenter=presenter),
                      width="stretch", key=f"{P}.regions")
    right.plotly_chart(figs.loss_curves(state["losses"], state["test"], presenter=presenter), width="stretch",
                       key=f"{P}.curves")
    name = "The linear classifier" if not config.hidden else \
        f"This MLP ({'×'.join(map(str, config.hidden))} {activation_info(config.activation).title}, " \
        f"{sum(config.hidden)} hidden units)"
    verdict = "cannot separate this data" if linear < 0.9 else "already separates most of it"
    right.markdown(f"A logistic regression on the raw x, y reaches **{linear:.1%}** training accuracy: a line "
                   f"{verdict}. {name} reaches **{train.accuracy:.1%}** on the training points"
                   + ("" if len(data.x_test) == 0 else f" and **{test.accuracy:.1%}** on the test points")
                   + f" after {len(state['losses'])} steps.")
    units = toy2d.unit_grids(model, bounds, TILE_RESOLUTION)
    if units is not None:
        st.markdown("**The first hidden layer, one unit per tile** (red > 0 > blue): each unit cuts the plane along "
                    "one line; the next layers combine the cuts.")
        st.plotly_chart(figs.unit_tiles(units.xs, units.ys, units.values, presenter=presenter), width="stretch",
                        key=f"{P}.tiles")


def render() -> None:
    data, linear = data_ui()
    own = own_points_ui(f"{P}.own")
    if own:
        data = toy2d.add_points(data, own)
        linear = toy2d.linear_accuracy(data.x_train, data.y_train)
    config, opt = model_ui()
    settings = (st.session_state[f"{P}.data"], st.session_state[f"{P}.noise"], st.session_state[f"{P}.points"],
                st.session_state[f"{P}.test"], config, opt, seed())
    st.latex(r"p(\text{class}\,k \mid x, y) = \operatorname{softmax}_k\bigl(f_\theta(x, y)\bigr),\quad "
             r"\text{boundary: } p_0 = p_1")
    st.toggle("Play", key=f"{P}.play", help="Train and redraw continuously (Step, every half second).")
    panel = st.fragment(train_panel, run_every=0.5 if st.session_state.get(f"{P}.play") else None)
    panel(data, config, opt, settings, linear)


st.title("Decision boundaries")
lesson_link_ui("app_pages/start/decision_boundaries.py")
st.markdown("A linear classifier splits the plane with one straight line. Pick a data set where no line works, "
            "then add hidden units and watch each of them cut the plane and the next layer combine the cuts.")
with url_state(FIELDS):
    render()
