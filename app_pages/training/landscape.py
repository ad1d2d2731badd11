"""Loss landscape: the loss of a real trained network along lines and on planes through its weights."""

import streamlit as st

from engine import limits
from engine.training import landscape
from engine.training.config import TrainConfig
from ui.figures import landscape as figures
from ui.landscape_panel import GridSettings, eval_batch, grid_ui, line_ui, plane_views_ui
from ui.lessons import lesson_link_ui
from ui.run_picker import run_select_ui, session_runs
from ui.sidebar import presenter_mode, seed
from ui.results import accuracy_text, trained_runs_ui
from ui.state import UrlField, number, url_state
from ui.train_config import load_dataset
from ui.train_panel import Job, train_panel_ui

RESOLUTIONS = [5, 11, 21, 31, 41]  # odd, so the coarse grid is every other point
IMAGES = [64, 128, 256, 512, 1024]
DEPTHS = [8, 14, 20, 26, 32]
DEMO = dict(data="digits", model="tinyvgg", optimizer="adam", lr=3e-3, epochs=6, batch_size=64, snapshots=True)
PATH_LRS = {"sgd": 0.2, "momentum": 0.03, "adam": 0.002}  # each optimizer's usual learning rate here
FIELDS = [UrlField("land.res", "res", 21, int, lambda v: v in RESOLUTIONS),
          number("land.span", "span", 1.0, 0.1, 5.0),
          UrlField("land.images", "n", 128, int, lambda v: v in IMAGES),
          number("land.dseed", "dseed", 0, 0, 9999, int),
          UrlField("land.depth", "depth", 14, int, lambda v: v in DEPTHS)]


def settings_ui() -> GridSettings:
    a, b, c, d = st.columns(4)
    res = a.select_slider("Grid points per side", RESOLUTIONS, key="land.res",
                          help="The full grid; every other point is drawn first. Capped at "
                          f"{limits.MAX_LANDSCAPE_RESOLUTION}² = {limits.MAX_LANDSCAPE_RESOLUTION ** 2} forward passes.")
    span = b.slider("Span", 0.1, 5.0, key="land.span", step=0.1,
                    help="Random planes go from −span to +span along each filter-normalized direction.")
    n = c.select_slider("Evaluation images", IMAGES, key="land.images",
                        help="The fixed validation batch every grid point is evaluated on.")
    dseed = d.number_input("Direction seed", 0, 9999, key="land.dseed", help="Which random plane to draw.")
    return GridSettings(int(res), float(span), int(n), int(dseed))


def render_your_run(settings) -> None:
    dataset = load_dataset("digits", None, seed())
    jobs = [Job("tinyvgg on digits (landscape demo)", TrainConfig(**DEMO, seed=seed()), dataset)]
    trained = train_panel_ui(jobs, key="land.train", label="Train a small CNN (with weight snapshots)")
    usable = session_runs(lambda run: bool(run.history.epoch))
    if not usable:
        st.info("No trained run yet: train one above, or pick one trained in the Train Lab (this page's demo "
                "also keeps a snapshot of the weights after every epoch, for the PCA plane of its path).")
        return
    if trained:
        st.session_state["land.run"] = trained[-1]
    run = run_select_ui(usable, key="land.run", help="Any trained run of this session.")
    snapshots = run.history.snapshots
    st.subheader("1-D: from initialization to trained weights")
    st.latex(r"\theta(\alpha) = (1-\alpha)\,\theta_{\text{init}} + \alpha\,\theta_{\text{trained}}")
    line_view = landscape.line_view(run.model, snapshots, span=settings.span, seed=settings.seed)
    if not line_view.from_init:
        st.caption("This run kept no snapshot of its initialization: a random filter-normalized direction instead.")
    x, y, loss_fn = eval_batch(run, settings.images)
    line = line_ui(run.model, line_view.plane, x, y, loss_fn, xs=line_view.xs,
                   key=f"{run.name}|{id(run.model)}|{settings.span}|{settings.images}|{settings.seed}")
    if line is not None:
        marks = {0.0: "init", 1.0: "trained"} if line_view.from_init else {0.0: "trained"}
        x_title = "α" if line_view.from_init else "α (filter-normalized direction)"
        st.plotly_chart(figures.interpolation(line.xs, line.loss, line.acc, x_title=x_title, marks=marks,
                                              presenter=presenter_mode()), width="stretch")
    st.subheader("2-D: a plane through the trained weights")
    st.latex(r"L(\theta^* + \alpha\,\delta + \beta\,\eta),\qquad \delta_i \leftarrow "
             r"\frac{\delta_i}{\lVert\delta_i\rVert}\,\lVert\theta^*_i\rVert \ \text{for every filter } i")
    kinds = ["random"] + (["pca"] if len(snapshots) >= 3 else [])
    kind = st.radio("Plane", kinds, horizontal=True, key="land.kind", help="Random filter-normalized "
                    "directions (Li et al.), or the two principal directions of the training path.",
                    format_func={"random": "random directions", "pca": "PCA of the training path"}.get)
    plane_views_ui(run, settings, kind=kind, side_by_side=True, section="yours")


def render_skip(settings) -> None:
    depth = st.select_slider("Depth", DEPTHS, key="land.depth", help="6n+2 layers; the gap grows with depth.")
    base = dict(DEMO, model="resnet_small", epochs=4, optimizer="momentum", lr=0.05)
    jobs = [Job(f"resnet_small-{depth} {'with' if skip else 'without'} skips",
                TrainConfig(**base, model_options=dict(depth=depth, width=8, skip=skip), seed=seed()),
                load_dataset("digits", None, seed())) for skip in (True, False)]
    pair = trained_runs_ui(jobs, key="land.skip", label="Train both")
    if pair:
        st.caption("Same random-direction seed for both. Li et al. see the plain network's surface turn chaotic at "
                   "depth 56; at classroom depths the gap is smaller — raise the depth to watch it grow.")
    for column, (name, run) in zip(st.columns(2), pair.items()):
        with column:
            st.markdown(f"**{name}** — test accuracy {accuracy_text(run.history.test_acc)}")
            plane_views_ui(run, settings, section="skips")


def render_paths(settings) -> None:
    jobs = [Job(f"tinyvgg · {opt}", TrainConfig(**dict(DEMO, epochs=8, optimizer=opt, lr=lr), seed=seed()),
                load_dataset("digits", None, seed())) for opt, lr in PATH_LRS.items()]
    trained = trained_runs_ui(jobs, key="land.paths", label="Train SGD, momentum and Adam from one initialization")
    chosen = [r for r in trained.values() if len(r.history.snapshots) >= 3]
    if len(chosen) < 2:
        st.info("Train the three optimizers above to see their paths (snapshots after every epoch).")
        return
    view = landscape.paths_view(chosen[0].model, {r.name: r.history.snapshots for r in chosen},
                                resolution=settings.resolution)
    x, y, loss_fn = eval_batch(chosen[0], settings.images)
    key = f"paths|{'|'.join(f'{r.name}{id(r.model)}' for r in chosen)}|{settings.resolution}|{settings.images}"
    grid = grid_ui(chosen[0].model, view.plane, x, y, loss_fn, xs=view.xs, ys=view.ys, key=key)
    if grid is not None:
        titles = (f"PC 1 ({view.plane.explained[0]:.0%})", f"PC 2 ({view.plane.explained[1]:.0%})")
        st.plotly_chart(figures.contour(grid.xs, grid.ys, grid.loss, paths=view.paths, axis_titles=titles,
                                        presenter=presenter_mode()), width="stretch")
        st.caption("The plane goes through the shared initialization (0, 0); every marker is one epoch's weights. "
                   "BatchNorm-free tinyvgg, so every point of the plane is a complete network.")


st.title("Loss landscape")
lesson_link_ui("app_pages/training/landscape.py")
st.markdown("The loss of a **real** network as its weights move along a line or across a plane. Directions are "
            "filter-normalized (Li et al. 2018) so sharp and flat minima can be compared; biases and BatchNorm "
            "parameters stay put. A coarse grid appears first; refine it when you like.")
with url_state(FIELDS):
    grid_settings = settings_ui()
    yours, skips, paths_tab = st.tabs(["Your run", "With vs without skip connections", "Optimizer paths on one plane"])
    with yours:
        render_your_run(grid_settings)
    with skips:
        render_skip(grid_settings)
    with paths_tab:
        render_paths(grid_settings)
