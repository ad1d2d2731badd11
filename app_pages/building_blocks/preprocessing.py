"""Preprocessing: the mean image, per-channel mean subtraction and standardization of a real data set, with histograms."""

import streamlit as st

from engine import data
from engine.layers import normalization
from ui.figures.normalization import channel_histograms
from ui.images import tile, to_display
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.state import choice, number, url_state
from ui.train_config import load_dataset

MODES = {
    "none": ("Raw pixels in [0, 1]", r"x"),
    "mean_image": ("Subtract the mean image (AlexNet)", r"x - \bar{x},\quad \bar{x} = \tfrac{1}{N}\sum_i x_i \in \mathbb{R}^{C\times H\times W}"),
    "channel_mean": ("Subtract the per-channel mean (VGG)", r"x_c - \mu_c,\quad \mu_c = \operatorname{mean}_{i,h,w}\, x_{i,c,h,w}"),
    "standardize": ("Standardize per channel (ResNet and later)", r"\frac{x_c - \mu_c}{\sigma_c}"),
}
FIELDS = [choice("pre.data", "data", "faces", data.names()), choice("pre.mode", "mode", "standardize", list(MODES)),
          number("pre.count", "n", 500, 10, 5000, int)]
PRESETS = {"mean_image": {"mode": "mean_image", "data": "faces"}, "colour": {"data": "shapes", "mode": "standardize"}}
SAMPLES = 8


def controls_ui():
    a, b, c = st.columns([2, 3, 2])
    name = a.selectbox("Data set", data.names(), key="pre.data", format_func=lambda n: data.info(n).title,
                       help="Colour sets show three channels with different means.")
    mode = b.radio("Preprocessing", list(MODES), key="pre.mode", format_func=lambda m: MODES[m][0],
                   help="Statistics come from the training images only, then apply to every split.")
    count = c.number_input("Training images used", 10, 5000, step=10, key="pre.count",
                           help="How many training images the statistics and histograms use.")
    return name, mode, int(count)


def render(name: str, mode: str, count: int) -> None:
    dataset = load_dataset(name, None, seed())
    x = dataset.train.x[:count]
    result = normalization.preprocess(x, mode)
    st.latex(MODES[mode][1])
    left, right = st.columns([1, 2])
    with left:
        st.image(to_display(result.mean_image), caption=f"Mean image of {len(x)} training images", width=220)
        channel = ["R", "G", "B"] if dataset.channels == 3 else ["gray"]
        st.dataframe({"channel": channel, "mean μ": [round(v, 4) for v in result.channel_mean],
                      "std σ": [round(v, 4) for v in result.channel_std]}, hide_index=True)
    with right:
        st.image(tile(x[:SAMPLES], SAMPLES, upscale_to=96), caption="Before", width="stretch")
        shown = normalization.signed_to_unit(result.x[:SAMPLES]) if mode != "none" else x[:SAMPLES]
        st.image(tile(shown, SAMPLES, upscale_to=96), width="stretch",
                 caption="After" + (" (gray = 0; shown with one scale for all images)" if mode != "none" else ""))
    edges, before = normalization.channel_histograms(x)
    after_edges, after = normalization.channel_histograms(result.x)
    st.plotly_chart(channel_histograms(edges, before, after_edges, after, channel_names=channel,
                                       presenter=presenter_mode()), width="stretch", key="pre.hist")
    st.caption("Centring moves each channel's histogram to 0; standardizing also gives it spread 1, so every "
               "input dimension starts on the same scale. Every VisionExplorer model does this in its first "
               "module (Normalize), with the training set's μ and σ.")


st.title("Preprocessing")
lesson_link_ui("app_pages/building_blocks/preprocessing.py")
st.markdown("Before the first layer, pixels are shifted and scaled so that each input is centred around 0 "
            "with a similar spread: gradients on the first weights then do not all share one sign, and one "
            "learning rate suits every input.")
with url_state(FIELDS, PRESETS):
    render(*controls_ui())
