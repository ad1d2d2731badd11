"""Transfer learning: a trained network's layers as features for new data — pixels vs each stage, the feature
space in 2-D, and the strategy table with a button that runs its recipe."""

import streamlit as st

from engine.training import probe, strategies
from engine.training.transfer import TransferReport
from ui import jobs
from ui.figures import transfer as figs
from ui.lessons import lesson_link_ui
from ui.sidebar import presenter_mode, seed
from ui.state import choice, flag, url_state
from ui.transfer import (FIELDS as SHARED, data_key, job_button_ui, per_class_ui, shots_label,
                         source_and_target_ui, start)

P = "tl"
FIELDS = SHARED + [
    choice(f"{P}.classifier", "clf", "logistic", probe.classifier_names()),
    choice(f"{P}.method", "emb", "pca", list(probe.EMBEDDINGS)),
    flag(f"{P}.similar", "similar", False),
    flag(f"{P}.much", "much", False),
]
PRESETS = {"shapes_to_faces": {"target": "faces", "k": 5},
           "shapes_to_digits": {"target": "digits", "k": 10},
           "global_pooling": {"target": "digits", "k": 10, "emb": "pca"},
           "little_different": {"target": "digits", "k": 5, "similar": False, "much": False}}


def render_probe(source, target) -> int:
    st.subheader("Linear probe: pixels vs each layer")
    left, right = st.columns(2)
    with left:
        k = per_class_ui("Only the training split shrinks: validation picks the layer, the test split reports.")
    classifier = right.selectbox("Linear classifier", probe.classifier_names(), key=f"{P}.classifier",
                                 format_func=lambda n: probe.CLASSIFIERS.get(n).title,
                                 help="Both standardize each number first (StandardScaler in one scikit-learn "
                                      "Pipeline, fitted on the training images only).")
    table = jobs.computed(f"{P}.probe", (source.key, data_key(target), k, classifier), probe.probe_table,
                          label="Linear probes", source=source, target=target, per_class=k,
                          classifier=classifier, seed=seed())
    if table is None:
        return k
    for note in table.notes:
        st.caption(f":material/info: {note}")
    rows = [(r.feature.label, r.feature.width, r.val_acc, r.test_acc) for r in table.features]
    st.plotly_chart(figs.probe_bars(rows, (table.pixels.val_acc, table.pixels.test_acc),
                                    chosen=table.chosen.feature.label, presenter=presenter_mode()), width="stretch")
    st.latex(r"\hat y(x) = \arg\max_k \; w_k^\top \,\frac{\phi_\ell(x) - \mu}{\sigma} + b_k")
    st.caption(f"φℓ = the source's layer ℓ, pooled (avg g = average to a g×g grid, flat = the whole map); μ, σ "
               f"per number from the {table.images} training images. Chosen on validation: "
               f"**{table.chosen.feature.label}**, test {table.chosen.test_acc:.1%} against {table.pixels.test_acc:.1%} "
               "for pixels. Global average pooling keeps one number per channel and forgets *where* things are.")
    return k


def render_space(source, target) -> None:
    st.subheader("The feature space in 2-D")
    options = {f.label: f for f in probe.feature_options(source)}
    if st.session_state.get(f"{P}.feature") not in options:
        st.session_state[f"{P}.feature"] = list(options)[-1]
    left, right = st.columns([3, 2])
    label = left.selectbox("Feature", list(options), key=f"{P}.feature",
                           help="Which layer and pooling to picture beside the raw pixels.")
    method = right.radio("Embedding", probe.EMBEDDINGS, key=f"{P}.method", horizontal=True,
                         format_func={"pca": "PCA", "tsne": "t-SNE"}.get,
                         help="PCA: the two directions of largest variance (linear). t-SNE: keeps neighbours "
                              "close (non-linear, slower; at most 2,000 images).")
    feature = options[label]
    space = jobs.computed(f"{P}.space", (source.key, data_key(target), label, method), probe.feature_space,
                          label=f"{method.upper()} pictures", source=source, target=target, layer=feature.layer,
                          pooling=feature.pooling, method=method, seed=seed(),
                          start_button="Draw the t-SNE pictures" if method == "tsne" else None)
    if space is None:
        return
    panels = [("pixels", space.pixels.points, space.pixels.labels),
              (label, space.features.points, space.features.labels)]
    st.plotly_chart(figs.feature_space(panels, space.class_names, presenter=presenter_mode()), width="stretch")
    if method == "pca":
        st.latex(r"z = V_2^\top \, \frac{x - \mu}{\sigma}, \quad V_2 = \text{top-2 eigenvectors of the covariance}")
        st.caption(f"The two axes keep {space.pixels.explained:.0%} (pixels) and {space.features.explained:.0%} "
                   "(features) of the variance. Classes that form separate clouds are easy for a linear probe.")
    else:
        st.caption("t-SNE places images that are neighbours in the full space close together; distances between "
                   "clusters and cluster sizes mean little. Same random subset of images in both pictures.")


def _keep_report(event) -> None:
    if isinstance(event, TransferReport):
        st.session_state[f"{P}.recipe_result"] = (st.session_state[f"{P}.recipe_for"], event)


def render_strategy(source, target, k: int) -> None:
    st.subheader("Which strategy? Similar or different data, little or a lot of it")
    left, right = st.columns(2)
    similar = left.toggle("My data is similar to the source's", key=f"{P}.similar",
                          help="Same kind of images and classes (e.g. photos after ImageNet).")
    much = right.toggle("I have a lot of it", key=f"{P}.much",
                        help="Thousands of images per class rather than a handful.")
    chosen = strategies.strategy_for(similar=similar, much=much)
    cells = {(s.similar, s.much): s.advice for _, s in strategies.STRATEGIES.items()}
    st.plotly_chart(figs.strategy_table(cells, selected=(similar, much), presenter=presenter_mode()),
                    width="stretch")
    st.markdown(f"**{chosen.title} → {chosen.advice}.** {chosen.why}")
    key = (source.key, data_key(target), chosen.name, k)
    live = jobs.progress_live(f"{P}.recipe", _keep_report)
    if job_button_ui(f"{P}.recipe", live, "Run this recipe",
                     help=f"On {shots_label(k)} training images per class (the slider above), beside pixels."):
        st.session_state[f"{P}.recipe_for"] = key
        start(f"{P}.recipe", live, strategies.run_strategy, label=chosen.advice, estimate_s=20.0,
              strategy=chosen.name, source=source, target=target, per_class=k, seed=seed())
    done_for, report = st.session_state.get(f"{P}.recipe_result", (None, None))
    if done_for == key:
        columns = st.columns(len(report.accuracies))
        for column, (method, acc) in zip(columns, report.accuracies.items()):
            column.metric(figs.METHOD_TITLES[method], f"{acc:.1%}")
        st.caption(f"Ran {report.recipe} on {report.per_class} images per class, in {report.seconds:.1f} s.")


def render() -> None:
    chosen = source_and_target_ui()
    if chosen is None:
        return
    source, target = chosen
    k = render_probe(source, target)
    render_space(source, target)
    render_strategy(source, target, k)


st.title("Transfer learning")
lesson_link_ui("app_pages/architectures/transfer.py")
st.markdown("A network trained on one data set has learned features: edges, textures, parts. Reuse them for "
            "another data set — drop the classifier, read a layer, and fit a linear classifier on top (a "
            "*linear probe*). Does it beat the same classifier on raw pixels? Fine-tuning and the few-shot "
            "curve are on the next page.")
with url_state(FIELDS, PRESETS):
    render()
