"""Gradients & initialization: per-layer gradient norms and activation statistics of a deep plain net on real images."""

import streamlit as st

from engine import data
from engine.layers import activations
from engine.training import gradient_flow as gflow
from engine.errors import UserInputError
from engine.models import init_names
from ui.figures.activations import layer_histograms, per_layer
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.state import choice, number, url_state
from ui.train_config import load_dataset

WIDTHS = [4, 8, 16, 32, 64, 128, 256, 512, 1024]
SLOTS = 3  # configurations compared at once
DEFAULTS = [("sigmoid", "normal", 0.01), ("relu", "kaiming", 0.01), ("tanh", "xavier", 0.01)]
INIT_HELP = ("default = PyTorch's own; kaiming N(0, 2/fan_in) for ReLU; xavier N(0, 2/(fan_in+fan_out)); "
             "normal N(0, σ²); zeros; constant = every weight σ.")

FIELDS = [choice("flow.kind", "kind", "mlp", ["mlp", "cnn"]), number("flow.depth", "depth", 20, 2, 50, int),
          choice("flow.width", "width", "64", [str(w) for w in WIDTHS]), number("flow.batch", "bs", 128, 2, 512, int),
          choice("flow.data", "data", "digits", data.names())]
for i, (act, init, sigma) in enumerate(DEFAULTS, start=1):
    FIELDS += [choice(f"flow.act{i}", f"a{i}", act, activations.names()), choice(f"flow.init{i}", f"i{i}", init, init_names()),
               number(f"flow.sigma{i}", f"s{i}", sigma, 1e-4, 10.0)]
PRESETS = {
    "vanishing": {"a1": "sigmoid", "i1": "normal", "s1": 0.01, "a2": "relu", "i2": "kaiming", "depth": 20},
    "exploding": {"a1": "relu", "i1": "normal", "s1": 1.0, "a2": "relu", "i2": "kaiming", "depth": 50, "width": "256"},
    "symmetry": {"a1": "tanh", "i1": "constant", "s1": 0.05, "a2": "relu", "i2": "zeros", "a3": "tanh", "i3": "xavier",
                 "depth": 6},
    "xavier_relu": {"a1": "relu", "i1": "xavier", "a2": "relu", "i2": "kaiming", "a3": "tanh", "i3": "xavier",
                    "depth": 40},
}


@st.cache_data(max_entries=64, show_spinner="Running one batch forward and backward…")
def _flow(data_name: str, data_seed: int, kind: str, depth: int, width: int, batch: int, act: str, init: str,
          sigma: float, _dataset) -> gflow.GradientFlow:
    return gflow.probe(_dataset, kind=kind, depth=depth, width=width, batch=batch, activation=act, init=init,
                       sigma=sigma, seed=data_seed)


def net_ui():
    cols = st.columns(5)
    kind = cols[0].segmented_control("Net", ["mlp", "cnn"], key="flow.kind", required=True,
                                     help="mlp: linear layers; cnn: 3×3 convs (padding 1, no pooling).")
    depth = cols[1].slider("Depth", 2, 50, key="flow.depth", help="Hidden layers, each followed by the activation.")
    width = cols[2].select_slider("Width", [str(w) for w in WIDTHS], key="flow.width",
                                  help="Units (mlp) or channels (cnn) per layer.")
    batch = cols[3].number_input("Batch", 2, 512, key="flow.batch", help="Real training images in the batch.")
    name = cols[4].selectbox("Data set", data.names(), key="flow.data", format_func=lambda n: data.info(n).title,
                             help="Whose images flow through the net.")
    return kind, depth, int(width), int(batch), name


def configs_ui() -> list[tuple[str, str, float]]:
    chosen = []
    for i, column in enumerate(st.columns(SLOTS), start=1):
        with column:
            st.markdown(f"**Configuration {i}**")
            act = st.selectbox("Activation", activations.names(), key=f"flow.act{i}",
                               format_func=lambda n: activations.info(n).title, help="The non-linearity of every layer.")
            init = st.selectbox("Initialization", init_names(), key=f"flow.init{i}", help=INIT_HELP)
            sigma = st.number_input("σ (normal) / value (constant)", 1e-4, 10.0, format="%.4g", key=f"flow.sigma{i}",
                                    disabled=init not in ("normal", "constant"), help="Used by normal and constant only.")
            chosen.append((act, init, float(sigma)))
    return chosen


def _label(act: str, init: str, sigma: float) -> str:
    return f"{activations.info(act).title} + {init}" + (f" σ={sigma:g}" if init in ("normal", "constant") else "")


def render_flow(net, configs) -> None:
    kind, depth, width, batch, name = net
    try:
        dataset = load_dataset(name, None, seed())
        flows = {_label(*c): _flow(name, seed(), kind, depth, width, batch, *c, _dataset=dataset) for c in configs}
    except UserInputError as error:
        st.error(str(error))
        return
    for label, flow in flows.items():
        if flow.overflow:
            st.warning(f"**{label}**: {flow.overflow}.")
        if flow.symmetric:
            st.info(f"**{label}**: in every layer all units compute the same value (symmetry): the gradients of "
                    "their weights are equal too, so training can never tell them apart.")
    presenter = presenter_mode()
    left, right = st.columns(2)
    left.plotly_chart(per_layer({k: [s.grad_norm for s in f.layers] for k, f in flows.items()},
                                title="Gradient norm ‖∂L/∂W‖ per layer", y_title="‖∂L/∂W‖ (log)",
                                presenter=presenter), width="stretch", key="flow.grad")
    right.plotly_chart(per_layer({k: [s.std for s in f.layers] for k, f in flows.items()},
                                 title="Activation std per layer", y_title="std (log)", presenter=presenter),
                       width="stretch", key="flow.std")
    left.latex(r"\frac{\partial L}{\partial h_{l-1}} = W_l^{\top}\Bigl(f'(z_l)\odot\frac{\partial L}{\partial h_l}\Bigr)")
    left.caption("Each layer multiplies the gradient by its weights and the activation's slope f′: a product of "
                 "depth factors. A missing point is a gradient that underflowed to exactly 0.")
    right.latex(r"\operatorname{Var}(z_l) = n\,\sigma_W^2\,\mathbb{E}[h_{l-1}^2],\quad \text{Kaiming: } \sigma_W^2 = \tfrac{2}{n}")
    right.caption("n = fan-in. ReLU zeroes half its inputs, so E[h²] = ½ Var(z): σ_W² = 2/n keeps the variance "
                  "constant through the layers (He et al. 2015); Xavier's 1/n suits tanh.")
    left.plotly_chart(per_layer({k: [s.dead_fraction for s in f.layers] for k, f in flows.items()},
                                title="Dead units per layer (0 on the whole batch)", y_title="share", log=False,
                                presenter=presenter), width="stretch", key="flow.dead")
    pick = right.selectbox("Histograms of", list(flows), key="flow.hist", help="Which configuration's layers to show.")
    right.caption("Below: activation values in 4 layers from input to output. Saturated sigmoids pile up at 0 "
                  "and 1; a collapsing std squeezes everything into one bar.")
    st.plotly_chart(layer_histograms(flows[pick].layers, presenter=presenter), width="stretch", key="flow.hists")


st.title("Gradients & initialization")
lesson_link_ui("app_pages/building_blocks/gradient_flow.py")
st.markdown("A deep **plain** net (no normalization, no skip connections) gets one batch of real images. "
            "Backpropagation multiplies the gradient by each layer's weights and activation slope: if that factor "
            "is below 1 the gradient **vanishes** towards the input, above 1 it **explodes**. The initialization "
            "sets the factor.")
with url_state(FIELDS, PRESETS):
    render_flow(net_ui(), configs_ui())
