"""Residual learning: deeper plain nets train worse (degradation), residual nets survive deleted blocks, paths."""

import dataclasses

import streamlit as st

from engine.errors import UserInputError
from engine.training import residual
from ui import jobs
from ui.figures import residual as figs
from ui.lessons import lesson_link_ui
from ui.results import trained_runs_ui
from ui.sidebar import presenter_mode, seed
from ui.state import choice, items, number, run_dataset, url_state
from ui.train_config import load_dataset
from ui.train_panel import Job

P = "res"
DATA = {"digits": None, "shapes": 16}  # name -> image size (None = native); shapes at 16×16 for speed
DEPTHS = [8, 14, 20, 26, 32, 44, 56]  # 6n + 2
RECIPE = residual.DegradationRecipe()
FIELDS = [
    choice(f"{P}.data", "data", "digits", list(DATA)),
    items(f"{P}.depths", "depths", list(RECIPE.depths), DEPTHS, kind=int, most=5),
    number(f"{P}.epochs", "ep", RECIPE.epochs, 1, 30, int),
    number(f"{P}.lr", "lr", RECIPE.lr, 0.001, 1.0),
    number(f"{P}.blocks", "n", 9, 1, 60, int),
]
PRESETS = {
    "degradation": {"data": "digits", "depths": [8, 20, 32, 44], "ep": 10, "lr": 0.1},  # measured: it reproduces
    "quick": {"depths": [8, 32], "ep": 4},
    "very_deep": {"depths": [8, 56], "ep": 10},
    "paths": {"n": 54},  # Veit et al.'s 110-layer ResNet: 54 blocks
}


def setup_ui() -> tuple[residual.DegradationRecipe, object]:
    a, b, c, d = st.columns([1, 3, 1, 1])
    name = a.selectbox("Data set", list(DATA), key=f"{P}.data", help="Bundled sets; shapes resized to 16×16.")
    depths = b.multiselect("Depths (layers, 6n + 2)", DEPTHS, key=f"{P}.depths", max_selections=5,
                           help="Each depth trains twice: a plain net and the same net with shortcuts.")
    epochs = c.number_input("Epochs", 1, 30, key=f"{P}.epochs", help="The same budget for every net.")
    lr = d.number_input("Learning rate η", 0.001, 1.0, key=f"{P}.lr", format="%.3f",
                        help="Plain SGD with a cosine decay; η = 0.1 reproduces the effect on digits.")
    recipe = dataclasses.replace(RECIPE, depths=tuple(sorted(depths)), epochs=int(epochs), lr=float(lr), seed=seed())
    return recipe, load_dataset(name, DATA[name], seed())


def verdict_ui(result: residual.Degradation) -> None:
    if result.reproduced:
        st.success(f"Reproduced: the {max(result.plain)}-layer plain net ends with a higher **training** loss than "
                   "every shallower plain net, while the residual nets do not get worse with depth. This is not "
                   "overfitting (that would be a low training loss and a high test loss): the deeper plain net is "
                   "harder to *optimize*, although it could copy the shallower one and set its extra layers to identity.")
    elif len(result.plain) >= 2:
        st.info("Not reproduced with this budget: " + ("the deepest plain net is not the worst trained. "
                if not result.plain_degrades else "the deepest residual net ended worse than the shallowest. ")
                + "Try the *degradation* preset (depths 8–44, 10 epochs, η = 0.1).")


def render_degradation(recipe, dataset) -> dict:
    st.subheader("The degradation problem (He et al. 2016, fig. 1)")
    st.latex(r"\text{plain: } y = F(x) \qquad \text{residual: } y = \sigma\big(F(x) + x\big)")
    st.caption(f"One recipe for every net: {recipe.describe()}, batch norm, on {dataset.title}. Plain and residual "
               "nets at one depth share the same branches F and the same initial weights; only the shortcut differs.")
    if len(recipe.depths) < residual.MIN_DEPTHS:
        st.info(f"Pick at least {residual.MIN_DEPTHS} depths: the experiment compares how nets train as they deepen.")
        return {}
    to_train = [Job(f"{name} on {dataset.name}", config, data)
                for name, config, data in residual.degradation_runs(recipe, dataset)]
    trained = trained_runs_ui(to_train, key=f"{P}.train", label="Train plain and residual nets")
    if not trained:
        st.info("The nets train as one job, an epoch of each in turn; their curves and the lesion study come here.")
        return {}
    result = residual.degradation(trained.values())
    curves = {residual.net_of(run): run.history.train_loss for run in trained.values() if run.history.train_loss}
    left, right = st.columns([3, 2])
    left.plotly_chart(figs.training_curves(curves, presenter=presenter_mode()), width="stretch")
    right.plotly_chart(figs.final_loss_by_depth(result.plain, result.residual, presenter=presenter_mode()),
                       width="stretch")
    verdict_ui(result)
    return trained


def render_lesion(trained: dict) -> None:
    st.subheader("Delete a block (Veit, Wilber & Belongie 2016)")
    pairs: dict[int, dict] = {}
    for run in trained.values():
        kind, depth = residual.net_of(run)
        pairs.setdefault(depth, {})[kind] = run
    pairs = {depth: dict(sorted(nets.items(), reverse=True)) for depth, nets in pairs.items() if len(nets) == 2}
    if not pairs:
        st.info("Train a plain and a residual net of one depth above, then delete their blocks here.")
        return
    depth = st.selectbox("Depth to lesion", sorted(pairs), index=len(pairs) - 1, key=f"{P}.lesion_depth",
                         help="Both nets of this depth, each evaluated on the test split with blocks deleted.")
    nets = pairs[depth]
    dataset = run_dataset(nets["residual"].name)
    if dataset is None:
        st.info("The data set of these runs is no longer in this session: train them again.")
        return
    st.caption("Residual net: a block's branch F is deleted and its shortcut kept (projections included), "
               r"$y = x$. Plain net: the whole block becomes the identity, where its output has its input's shape.")
    estimate = sum(residual.lesion_seconds(run, len(dataset.test)) for run in nets.values())
    key = (tuple(run.name for run in nets.values()), tuple(len(run.history.epoch) for run in nets.values()), seed())
    lesions = jobs.computed(f"{P}.lesion", key, residual.lesion_pair, label=f"Lesion study at depth {depth}",
                            estimate_s=estimate, start_button="Run the lesion study", runs=nets,
                            split=dataset.test, seed=seed(),
                            start_help="Each block deleted alone, then k random blocks (10 draws per k).")
    if lesions is None:
        return
    left, right = st.columns(2)
    left.plotly_chart(figs.lesion_bars(lesions, presenter=presenter_mode()), width="stretch")
    right.plotly_chart(figs.random_k_curve(lesions, presenter=presenter_mode()), width="stretch")
    for refused in lesions["plain"].not_removable:
        st.caption(f"Plain **{refused.block}** cannot be deleted: {refused.reason}.")
    st.caption("A plain net is one long chain: delete a link and every later layer sees inputs it never saw. "
               "A residual net's blocks each add a small change to a shared signal, so most can go; the "
               "first block and the down-sampling blocks matter most.")


def render_paths() -> None:
    st.subheader("An ensemble of paths")
    n = st.slider("Residual blocks n", 1, 60, key=f"{P}.blocks",
                  help="Each block is either passed through F or skipped: 2ⁿ paths from input to output.")
    st.latex(r"y_n = y_{n-1} + F_n(y_{n-1}) \;\Rightarrow\; 2^{n} \text{ paths}, \quad "
             r"\#\{\text{paths of length } k\} = \binom{n}{k}")
    st.plotly_chart(figs.path_histogram(residual.path_lengths(n), presenter=presenter_mode()), width="stretch")
    st.caption(f"Most paths are of middle length: mean n/2 = {n / 2:g}, standard deviation √n/2 = {n ** 0.5 / 2:.2f}. "
               "Only one path passes through every block; deleting a block removes half the paths, "
               "but leaves 2ⁿ⁻¹ intact.")


def render() -> None:
    recipe, dataset = setup_ui()
    try:
        trained = render_degradation(recipe, dataset)
        render_lesion(trained)
    except UserInputError as error:
        st.error(str(error))
    render_paths()


st.title("Residual learning")
lesson_link_ui("app_pages/architectures/residual.py")
st.markdown("Why did networks stop at about 20 layers until 2015, and why do shortcuts fix it? Train plain and "
            "residual networks of growing depth on the same data with the same recipe, compare their **training** "
            "loss, then delete blocks of the trained nets and count the paths through a ResNet.")
with url_state(FIELDS, PRESETS):
    render()
