"""Loss landscape: the loss of a real trained network along lines and on planes through its weights."""

import numpy as np
import streamlit as st

from engine.training import landscape, losses
from engine.errors import UserInputError
from engine.training.trainer import TrainConfig
from ui.figures import landscape as figures
from ui.landscape_panel import grid_ui, line_ui
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.state import UrlField, init_from_url, number, run_dataset, runs, show_problems, write_to_url
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


def settings_ui() -> tuple[int, float, int, int]:
    a, b, c, d = st.columns(4)
    res = a.select_slider("Grid points per side", RESOLUTIONS, key="land.res",
                          help="The full grid; every other point is drawn first. Capped at 41×41 = 1681 "
                          "forward passes.")
    span = b.slider("Span", 0.1, 5.0, key="land.span", step=0.1,
                    help="Random planes go from −span to +span along each filter-normalized direction.")
    n = c.select_slider("Evaluation images", IMAGES, key="land.images",
                        help="The fixed validation batch every grid point is evaluated on.")
    dseed = d.number_input("Direction seed", 0, 9999, key="land.dseed", help="Which random plane to draw.")
    return res, span, n, dseed


def eval_batch(run, n: int):
    """The first `n` validation images of the run's data set, and the run's loss function."""
    dataset = run_dataset(run.name)
    if dataset is None:
        dataset = load_dataset(run.config["data"], run.config.get("image_size"), run.config.get("seed", 0))
    loss_fn = losses.build(run.config["loss"], **run.config.get("loss_options", {}))
    return dataset.val.x[:n], dataset.val.y[:n], loss_fn


def plane_views(run, res, span, n, dseed, *, kind: str = "random", side_by_side: bool = False) -> None:
    """Contour and 3-D surface of one run's landscape on a random or PCA plane."""
    x, y, loss_fn = eval_batch(run, n)
    key = f"{run.name}|{id(run.model)}|{kind}|{res}|{span}|{n}|{dseed}"
    paths, titles = {}, ("α (direction 1)", "β (direction 2)")
    if kind == "pca":
        plane, (path,) = landscape.pca_plane(run.model, [run.history.snapshots])
        xs, ys = landscape.path_axes([path], res)
        paths = {"training path": path}
        titles = (f"PC 1 ({plane.explained[0]:.0%} of the path)", f"PC 2 ({plane.explained[1]:.0%})")
    else:
        plane = landscape.random_plane(run.model, seed=dseed)
        xs = ys = landscape.axis(span, res)
    grid = grid_ui(run.model, plane, x, y, loss_fn, xs=xs, ys=ys, key=key)
    if grid is None:
        return
    presenter = presenter_mode()
    left, right = st.columns(2) if side_by_side else (st.container(), st.container())
    left.plotly_chart(figures.contour(grid.xs, grid.ys, grid.loss, paths=paths, axis_titles=titles,
                                      presenter=presenter), width="stretch", key=f"{key}.contour")
    right.plotly_chart(figures.surface(grid.xs, grid.ys, grid.loss, axis_titles=titles, presenter=presenter),
                       width="stretch", key=f"{key}.surface")


def render_your_run(settings) -> None:
    dataset = load_dataset("digits", None, seed())
    jobs = [Job("tinyvgg on digits (landscape demo)", TrainConfig(**DEMO, seed=seed()), dataset)]
    trained = train_panel_ui(jobs, key="land.train", label="Train a small CNN (with weight snapshots)")
    usable = [name for name, run in runs().items() if run.history.epoch]
    if not usable:
        st.info("No trained run yet: train one above, or pick one trained in the Train Lab (this page's demo "
                "also keeps a snapshot of the weights after every epoch, for the PCA plane of its path).")
        return
    default = usable.index(trained[-1]) if trained else len(usable) - 1
    run = runs()[st.selectbox("Run", usable, index=default, key="land.run", help="Any trained run of this session.")]
    snapshots = run.history.snapshots
    st.subheader("1-D: from initialization to trained weights")
    st.latex(r"\theta(\alpha) = (1-\alpha)\,\theta_{\text{init}} + \alpha\,\theta_{\text{trained}}")
    if len(snapshots) >= 2:
        plane = landscape.interpolation_line(run.model, snapshots[0], run.model.state_dict())
        marks, x_title = {0.0: "init", 1.0: "trained"}, "α"
        alphas = np.linspace(-0.5, 1.5, 41)
    else:
        st.caption("This run kept no snapshot of its initialization: a random filter-normalized direction instead.")
        plane = landscape.random_plane(run.model, seed=settings[3], dims=1)
        marks, x_title = {0.0: "trained"}, "α (filter-normalized direction)"
        alphas = landscape.axis(settings[1], 41)
    x, y, loss_fn = eval_batch(run, settings[2])
    line = line_ui(run.model, plane, x, y, loss_fn, xs=alphas, key=f"{run.name}|{id(run.model)}|{settings[1:]}")
    if line is not None:
        st.plotly_chart(figures.interpolation(line.xs, line.loss, line.acc, x_title=x_title, marks=marks,
                                              presenter=presenter_mode()), width="stretch")
    st.subheader("2-D: a plane through the trained weights")
    st.latex(r"L(\theta^* + \alpha\,\delta + \beta\,\eta),\qquad \delta_i \leftarrow "
             r"\frac{\delta_i}{\lVert\delta_i\rVert}\,\lVert\theta^*_i\rVert \ \text{for every filter } i")
    kinds = ["random"] + (["pca"] if len(snapshots) >= 3 else [])
    kind = st.radio("Plane", kinds, horizontal=True, key="land.kind", help="Random filter-normalized "
                    "directions (Li et al.), or the two principal directions of the training path.",
                    format_func={"random": "random directions", "pca": "PCA of the training path"}.get)
    plane_views(run, *settings, kind=kind, side_by_side=True)


def render_skip(settings) -> None:
    depth = st.select_slider("Depth", DEPTHS, key="land.depth", help="6n+2 layers; the gap grows with depth.")
    base = dict(DEMO, model="resnet_small", epochs=4, optimizer="momentum", lr=0.05)
    jobs = [Job(f"resnet_small-{depth} {'with' if skip else 'without'} skips",
                TrainConfig(**base, model_options=dict(depth=depth, width=8, skip=skip), seed=seed()),
                load_dataset("digits", None, seed())) for skip in (True, False)]
    trained = train_panel_ui(jobs, key="land.skip", label="Train both")
    if trained:
        st.session_state["land.skip_runs"] = trained
    names = [n for n in st.session_state.get("land.skip_runs", []) if n in runs()]
    if names:
        st.caption("Same random-direction seed for both. Li et al. see the plain network's surface turn chaotic at "
                   "depth 56; at classroom depths the gap is smaller — raise the depth to watch it grow.")
    for column, name in zip(st.columns(2), names):
        with column:
            run = runs()[name]
            st.markdown(f"**{name}** — test accuracy {run.history.test_acc or 0:.1%}")
            plane_views(run, *settings)


def render_paths(settings) -> None:
    jobs = [Job(f"tinyvgg · {opt}", TrainConfig(**dict(DEMO, epochs=8, optimizer=opt, lr=lr), seed=seed()),
                load_dataset("digits", None, seed())) for opt, lr in PATH_LRS.items()]
    trained = train_panel_ui(jobs, key="land.paths", label="Train SGD, momentum and Adam from one initialization")
    if trained:
        st.session_state["land.path_runs"] = trained
    chosen = [runs()[n] for n in st.session_state.get("land.path_runs", []) if n in runs()]
    chosen = [r for r in chosen if len(r.history.snapshots) >= 3]
    if len(chosen) < 2:
        st.info("Train the three optimizers above to see their paths (snapshots after every epoch).")
        return
    res, _, n, _ = settings
    model = chosen[0].model
    plane, coords = landscape.pca_plane(model, [r.history.snapshots for r in chosen], center="start")
    xs, ys = landscape.path_axes(coords, res)
    x, y, loss_fn = eval_batch(chosen[0], n)
    key = f"paths|{'|'.join(f'{r.name}{id(r.model)}' for r in chosen)}|{res}|{n}"
    grid = grid_ui(model, plane, x, y, loss_fn, xs=xs, ys=ys, key=key)
    if grid is not None:
        titles = (f"PC 1 ({plane.explained[0]:.0%})", f"PC 2 ({plane.explained[1]:.0%})")
        st.plotly_chart(figures.contour(grid.xs, grid.ys, grid.loss, paths={r.name: c for r, c in zip(chosen, coords)},
                                        axis_titles=titles, presenter=presenter_mode()), width="stretch")
        st.caption("The plane goes through the shared initialization (0, 0); every marker is one epoch's weights. "
                   "BatchNorm-free tinyvgg, so every point of the plane is a complete network.")


st.title("Loss landscape")
lesson_link_ui("app_pages/training/landscape.py")
st.markdown("The loss of a **real** network as its weights move along a line or across a plane. Directions are "
            "filter-normalized (Li et al. 2018) so sharp and flat minima can be compared; biases and BatchNorm "
            "parameters stay put. A coarse grid appears first; refine it when you like.")
show_problems(init_from_url(FIELDS))
grid_settings = settings_ui()
write_to_url(FIELDS)
yours, skips, paths_tab = st.tabs(["Your run", "With vs without skip connections", "Optimizer paths on one plane"])
try:
    with yours:
        render_your_run(grid_settings)
    with skips:
        render_skip(grid_settings)
    with paths_tab:
        render_paths(grid_settings)
except UserInputError as error:
    st.error(str(error))
