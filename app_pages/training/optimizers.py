"""Optimizers on surfaces: the real torch.optim optimizers race from one start point across 2-D test functions."""

import streamlit as st

from engine.training import surfaces as optim2d
from engine.errors import UserInputError
from engine.training.optimizers import OPTIMIZERS, optimizer_info
from ui.figures.optim import per_step, surface_3d, surface_contour
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode
from ui.state import choice, flag, number, url_state

LR_FACTORS = {"too_small": ("Too small (×0.1)", 0.1), "right": ("About right", 1.0),
              "too_large": ("Too large (×8)", 8.0)}
DEFAULT_ON = ("sgd", "momentum", "adam")
GRID_POINTS = 121


def _surface_from_url() -> str:
    name = st.session_state.get("opt.surface", st.query_params.get("surf", "quadratic"))
    return name if name in optim2d.names() else "quadratic"


SURFACE0 = _surface_from_url()
FIELDS = [choice("opt.surface", "surf", "quadratic", optim2d.names()),
          number("opt.kappa", "kappa", 10.0, 1.0, 1000.0), number("opt.steps", "steps", 150, 10, 1000, int),
          number("opt.momentum", "mom", 0.9, 0.0, 0.99)]
FIELDS += [flag(f"opt.use.{n}", n, n in DEFAULT_ON) for n in OPTIMIZERS]
FIELDS += [number(f"opt.lr.{n}", f"lr_{n}", optim2d.suggested_lr(SURFACE0, n), 1e-6, 100.0) for n in OPTIMIZERS]
PRESETS = {name: {f"lr_{n}": factor * optim2d.suggested_lr(SURFACE0, n) for n in OPTIMIZERS}
           for name, (_, factor) in LR_FACTORS.items()}


@st.cache_data(max_entries=32)
def _grid(surface: str, condition: float) -> optim2d.Grid:
    return optim2d.grid(surface, resolution=GRID_POINTS, condition=condition)


@st.cache_data(max_entries=256)
def _trajectory(surface: str, optimizer: str, lr: float, steps: int, momentum: float,
                condition: float) -> optim2d.Trajectory:
    return optim2d.trajectory(surface, optimizer, lr=lr, steps=steps, momentum=momentum, condition=condition)


def _set_learning_rates(factor: float) -> None:
    surface = st.session_state["opt.surface"]
    for n in OPTIMIZERS:
        st.session_state[f"opt.lr.{n}"] = float(f"{factor * optim2d.suggested_lr(surface, n):.4g}")


def surface_ui() -> tuple[str, float, int, float]:
    left, mid, right, last = st.columns(4)
    surface = left.selectbox("Surface", optim2d.names(), key="opt.surface",
                             format_func=lambda n: optim2d.info(n).title, on_change=_set_learning_rates,
                             args=(1.0,), help="The function f(x, y) to minimize; the learning rates reset "
                                               "to ones that work on it.")
    kappa = mid.slider("Condition number κ", 1.0, 1000.0, key="opt.kappa", step=1.0,
                       disabled=surface != "quadratic",
                       help="Quadratic only: ratio of the steepest to the flattest curvature.")
    steps = right.slider("Steps", 10, 1000, key="opt.steps", step=10, help="How many optimizer steps to run.")
    momentum = last.slider("Momentum μ", 0.0, 0.99, key="opt.momentum", step=0.01,
                           help="Used by SGD + momentum and Nesterov (PyTorch's `momentum`). Nesterov needs "
                                "μ > 0: it looks ahead along the velocity, and with μ = 0 there is none.")
    info = optim2d.info(surface)
    st.latex(info.formula + (rf",\quad \kappa = {kappa:g}" if surface == "quadratic" else ""))
    st.caption(f"{info.note} Start: {info.start}; minima (★): {', '.join(str(m) for m in info.minima)}.")
    return surface, kappa, steps, momentum


def optimizers_ui() -> dict[str, float]:
    """A row per optimizer: use it?, its update rule, its learning rate. Returns {name: lr} of those used."""
    chosen: dict[str, float] = {}
    with st.expander("Optimizers, their update rules and learning rates", expanded=True):
        st.caption(r"$g = \nabla f(\theta)$; AdaGrad/RMSProp/Adam use PyTorch's defaults "
                   r"($\epsilon = 10^{-10}$ / $10^{-8}$, $\alpha = 0.99$, $\beta_1 = 0.9$, $\beta_2 = 0.999$).")
        buttons = st.columns(len(LR_FACTORS))
        for column, (name, (label, factor)) in zip(buttons, LR_FACTORS.items()):
            column.button(label, key=f"opt.preset.{name}", on_click=_set_learning_rates, args=(factor,),
                          width="stretch", help=f"Set every learning rate to {factor:g}× one that works here.")
        for n, entry in OPTIMIZERS.items():
            use, formula, rate = st.columns([1.5, 3.6, 1.0], vertical_alignment="center")
            used = use.checkbox(entry.title, key=f"opt.use.{n}", help=f"Run {entry.title} from the start point.")
            formula.latex(entry.rule)
            lr = rate.number_input("η", 1e-6, 100.0, key=f"opt.lr.{n}", format="%.4g", step=None,
                                   help=f"Learning rate of {entry.title}.", disabled=not used)
            if used:
                chosen[n] = lr
    return chosen


def render_paths(surface: str, kappa: float, steps: int, momentum: float, chosen: dict[str, float]) -> None:
    if not chosen:
        st.info("Tick at least one optimizer above.")
        return
    grid, paths = _grid(surface, kappa), {}
    for n, lr in chosen.items():  # one optimizer's refused setting (Nesterov with μ = 0) leaves the others drawn
        try:
            paths[optimizer_info(n).title] = _trajectory(surface, n, lr, steps, momentum, kappa)
        except UserInputError as error:
            st.error(f"{optimizer_info(n).title}: {error}")
    if not paths:
        return
    for path in paths.values():
        if path.diverged:
            st.warning(path.message)
    info, presenter = optim2d.info(surface), presenter_mode()
    positions = {name: p.positions for name, p in paths.items()}
    flat, lifted = st.tabs(["Contours, animated", "3-D surface"])
    flat.plotly_chart(surface_contour(grid.xs, grid.ys, grid.z, positions, log_scale=info.log_scale,
                                      minima=info.minima, presenter=presenter), width="stretch")
    lifted.plotly_chart(surface_3d(grid.xs, grid.ys, grid.z, positions, {k: p.losses for k, p in paths.items()},
                                  log_scale=info.log_scale, presenter=presenter), width="stretch")
    left, right = st.columns(2)
    left.plotly_chart(per_step({k: p.losses for k, p in paths.items()}, title="Loss per step",
                               y_title="f(θ)", presenter=presenter), width="stretch")
    right.plotly_chart(per_step({k: p.step_sizes for k, p in paths.items()}, title="Step size per step",
                                y_title="‖θₖ₊₁ − θₖ‖", presenter=presenter), width="stretch")
    rows = [{"optimizer": k, "η": p.lr, "steps run": len(p.step_sizes), "final f": float(p.losses[-1]),
             "distance to nearest minimum": optim2d.nearest_minimum(surface, tuple(p.positions[-1]))[1],
             "diverged": p.diverged} for k, p in paths.items()]
    st.dataframe(rows, hide_index=True, column_config={"final f": st.column_config.NumberColumn(format="%.3g"),
                 "distance to nearest minimum": st.column_config.NumberColumn(format="%.3g")})


st.title("Optimizers on surfaces")
lesson_link_ui("app_pages/training/optimizers.py")
st.markdown("The same `torch.optim` optimizers that train networks, on a function of just two parameters, "
            "so you can watch every step. Press **▶ Play** on the contour plot; change learning rates and "
            "surfaces and see which optimizer zig-zags, overshoots, stalls on a plateau or escapes a saddle.")
with url_state(FIELDS, PRESETS):
    render_paths(*surface_ui(), optimizers_ui())
