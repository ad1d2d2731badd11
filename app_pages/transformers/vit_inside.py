"""Inside a ViT: patches, position-embedding similarity, per-head attention, rollout, attention distance."""

import streamlit as st

from engine.errors import UserInputError
from engine.explain import attention as att
from engine.models.vit import patches
from engine.training.config import TrainConfig
from engine.training.metrics import predict_one
from ui.figures import attention as figs
from ui.images import tile, to_display
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.run_picker import family_runs, run_select_ui
from ui.state import choice, number, run_dataset, url_state
from ui.train_config import load_dataset
from ui.train_panel import Job, train_panel_ui

P = "vit"
QUICK = {  # name -> (title, TrainConfig); digits ≈ 6 s and ≈ 89 % test accuracy on 2 cores
    "digits": ("Digits 8×8, patches 2×2", TrainConfig(
        data="digits", model="vit_tiny", model_options=dict(width=32, depth=2, heads=2), optimizer="adamw",
        lr=3e-3, batch_size=32, epochs=8)),
    "shapes": ("Shapes 16×16, patches 2×2 (slower)", TrainConfig(
        data="shapes", image_size=16, model="vit_tiny", model_options=dict(width=32, depth=3, heads=4, patch_size=2),
        optimizer="adamw", lr=2e-3, batch_size=64, epochs=6, augmentation="flip_shift")),
}
FIELDS = [choice(f"{P}.quick", "quick", "digits", list(QUICK)), number(f"{P}.index", "i", 0, 0, 100_000, int),
          choice(f"{P}.fusion", "fusion", "mean", list(att.HEAD_FUSIONS)),
          number(f"{P}.discard", "discard", 0.0, 0.0, 0.95)]


def model_ui():
    """Pick a ViT Run of this session, or train a small one now; None until there is one."""
    with st.expander("Train a small ViT now", expanded=not family_runs("vit")):
        quick = st.selectbox("Data", list(QUICK), key=f"{P}.quick", format_func=lambda k: QUICK[k][0],
                             help="A tiny ViT trained here and kept as a Run of this session.")
        title, config = QUICK[quick]
        config = TrainConfig(**{**config.to_dict(), "seed": seed()})
        dataset = load_dataset(config.data, config.image_size, seed())
        trained = train_panel_ui([Job(f"vit_tiny on {quick}", config, dataset)], key=f"{P}.train",
                                 label="Train the ViT")
        if trained:
            st.session_state[f"{P}.run"] = trained[-1]
    available = family_runs("vit")
    if not available:
        st.info("No ViT yet: train one above (or on the CNN vs ViT page).")
        return None
    return run_select_ui(available, key=f"{P}.run", label="ViT run", help="Any ViT trained in this session.")


def image_ui(run):
    dataset = run_dataset(run.name)
    if dataset is None:
        st.info("This run was loaded from a file: its data set is not at hand, so there are no images to show.")
        return None
    count = len(dataset.test)
    index = st.number_input(f"Test image (0–{count - 1})", 0, 100_000, key=f"{P}.index",
                            help="Which test image to look at.") % count
    image = dataset.test.x[index]
    guess = predict_one(run.model, image)
    st.caption(f"True class **{run.class_names[int(dataset.test.y[index])]}**, predicted "
               f"**{run.class_names[guess.best]}** ({guess.confidence:.0%}).")
    return image, dataset


def render_patches(image, maps) -> None:
    st.subheader("1. The image becomes a sequence of patches")
    cut = patches(image, maps.patch_size)  # (N, C, p, p)
    c, p = cut.shape[1], maps.patch_size
    left, right = st.columns([1, 2])
    left.image(to_display(image, upscale_to=192), caption="the image")
    right.image(tile(cut, maps.grid, gap=2, upscale_to=40), caption=f"{len(cut)} patches, row by row")
    st.latex(rf"{maps.grid}\times{maps.grid} = {len(cut)}\ \text{{patches}},\ \text{{each}}\ {c}\cdot{p}\cdot{p} = "
             rf"{c * p * p}\ \text{{numbers}} \xrightarrow{{\ E\ }} \mathbb{{R}}^{{D}}"
             + (r",\quad \text{plus one class token}" if maps.class_token else ""))


def render_positions(run, presenter: bool) -> None:
    st.subheader("2. What the position embeddings learned")
    try:
        similarity = att.position_similarity(run.model)  # (P, g, g)
    except UserInputError as error:
        st.info(f"{error}: the model sees the patches as an unordered set.")
        return
    st.plotly_chart(figs.position_similarity(similarity.numpy(), presenter=presenter), width="stretch")
    st.caption("Tile (r, c) shows how similar patch (r, c)'s embedding is to every patch. A bright spot at "
               "its own place and along its row and column means the model learned the 2-D layout itself.")


def render_heads(maps, presenter: bool) -> None:
    st.subheader("3. Where each head looks, layer by layer")
    cls = att.class_token_attention(maps)[0].numpy()  # (L, h, g, g)
    what = "class token's attention" if maps.class_token else "attention each patch receives (mean pooling)"
    st.plotly_chart(figs.head_maps(cls, title=f"The {what} to the patches", presenter=presenter), width="stretch")


def render_rollout(image, maps, presenter: bool) -> None:
    st.subheader("4. Attention rollout")
    st.latex(r"\tilde A_\ell = \frac{\mathrm{fuse}(A_\ell) + I}{2}\ \text{(rows renormalized)},\qquad "
             r"R = \tilde A_L \tilde A_{L-1} \cdots \tilde A_1")
    left, right = st.columns([1, 2])
    with left:
        fusion = st.segmented_control("Head fusion", list(att.HEAD_FUSIONS), key=f"{P}.fusion",
                                      help="How the heads of one layer become one matrix.") or "mean"
        discard = st.slider("Discard ratio", 0.0, 0.95, step=0.05, key=f"{P}.discard",
                            help="Zero the weakest fraction of attention entries per layer (denoises).")
        st.caption("The identity stands for the residual connection: half of each token comes straight "
                   "through. The map is the class token's row of R (or the mean row without one).")
    heat = att.rollout(maps, head_fusion=fusion, discard_ratio=discard)[0].numpy()
    right.plotly_chart(figs.overlay(to_display(image, upscale_to=None), heat, patch_size=maps.patch_size,
                                    title="Rollout: what the output draws on", presenter=presenter), width="stretch")


def render_distance(run, dataset, presenter: bool) -> None:
    st.subheader("5. Local or global? Attention distance by depth")
    batch = att.attention_weights(run.model, dataset.test.x[:64])
    distance = att.mean_attention_distance(batch).numpy()
    st.plotly_chart(figs.distance_by_layer(distance, image_size=dataset.image_size, presenter=presenter),
                    width="stretch")
    st.caption("Average over 64 test images of the pixel distance between a patch and the patches it "
               "attends to, per head. A convolution's is fixed by its kernel; a ViT head chooses its own — "
               "often some local heads early and only global ones late.")


def render() -> None:
    presenter = presenter_mode()
    run = model_ui()
    if run is None:
        return
    picked = image_ui(run)
    if picked is None:
        return
    image, dataset = picked
    maps = att.attention_weights(run.model, image[None])
    render_patches(image, maps)
    render_positions(run, presenter)
    render_heads(maps, presenter)
    render_rollout(image, maps, presenter)
    render_distance(run, dataset, presenter)


st.title("Inside a ViT")
lesson_link_ui("app_pages/transformers/vit_inside.py")
st.markdown("A Vision Transformer reads an image as a sentence of patches. Train a tiny one (or pick one "
            "trained on the CNN vs ViT page) and look at what its position embeddings and attention heads do.")
with url_state(FIELDS):
    render()
