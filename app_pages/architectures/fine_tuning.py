"""Fine-tuning and the few-shot curve: a new head on a frozen source, then its top blocks unfrozen at a smaller
learning rate; and test accuracy against training images per class for four ways to learn the target."""

import streamlit as st

from engine.training import sources, transfer
from engine.training.events import EpochEnd
from engine.training.runs import History
from engine.training.transfer import FineTune
from ui import jobs
from ui.figures import transfer as figs
from ui.lessons import lesson_link_ui
from ui.long_work import remembered
from ui.sidebar import presenter_mode, seed
from ui.state import UrlField, flag, items, number, store_run, unique_run_name, url_state
from ui.train_panel import curves_ui
from ui.transfer import (FIELDS as SHARED, SHOTS, data_key, job_button_ui, per_class_ui, shots_label,
                         source_and_target_ui, start)

P = "ft"
FACTORS = [0.01, 0.03, 0.1, 0.3, 1.0]
FIELDS = SHARED + [
    flag(f"{P}.head", "head", True), flag(f"{P}.head_first", "first", True), flag(f"{P}.bn_eval", "bn_eval", True),
    number(f"{P}.unfreeze", "unfreeze", 1, 0, 64, int), number(f"{P}.epochs", "ep", 5, 1, 50, int),
    UrlField(f"{P}.factor", "factor", 0.1, float, lambda v: v in FACTORS),
    items(f"{P}.shots", "shots", [1, 5, 20, 0], SHOTS, kind=int, most=7),
    number(f"{P}.curve_epochs", "cep", 5, 1, 20, int),
]
PRESETS = {"head_only": {"unfreeze": 0, "k": 5}, "unfreeze_all": {"unfreeze": 64, "k": 20},
           "bn_train_mode": {"unfreeze": 0, "bn_eval": False, "k": 5, "target": "digits"},
           "curve_faces": {"target": "faces", "shots": [1, 2, 5, 10, 20, 0]},
           "curve_digits": {"target": "digits", "shots": [1, 2, 5, 10, 20, 50, 0]}}


def spec_ui(source) -> tuple[FineTune, int]:
    a, b, c, d = st.columns(4)
    with a:
        k = per_class_ui("Training images of each class the fine-tuning sees.")
    head = b.toggle("Train the new head", key=f"{P}.head", help="The fresh classifier for the target's classes.")
    first = c.toggle("Head first, base frozen", key=f"{P}.head_first",
                     help="Stage 1 trains only the head, so random head gradients do not wreck the base.")
    bn_eval = d.toggle("Frozen BN: eval mode", key=f"{P}.bn_eval",
                       help="Off: frozen layers normalize with each batch's statistics; their running averages drift.")
    blocks = len(source.blocks)
    st.session_state[f"{P}.unfreeze"] = min(st.session_state[f"{P}.unfreeze"], blocks)
    e, f, g = st.columns(3)
    unfreeze = e.slider("Unfreeze the top k blocks", 0, blocks, key=f"{P}.unfreeze",
                        help=f"0 = only the head trains. From the top: {', '.join(reversed(source.blocks))}.")
    epochs = int(f.number_input("Epochs per stage", 1, 50, key=f"{P}.epochs", help="Each stage runs this long."))
    factor = g.select_slider("Base learning-rate factor f", FACTORS, key=f"{P}.factor",
                             help="The unfrozen blocks learn at η·f, the head at η (Adam, η = 0.003).")
    staged = first and head  # stage 1: the head alone
    spec = FineTune(head_epochs=epochs if staged else 0, epochs=epochs if unfreeze or not staged else 0,
                    unfreeze=unfreeze, base_lr_factor=factor, train_head=head,
                    frozen_bn="eval" if bn_eval else "train", seed=seed())
    transfer.check(spec, source)  # nothing to learn: the frame shows why
    return spec, k


def _tune_live(job, events) -> None:
    history: History = st.session_state[f"{P}.history"]
    for event in events:
        if isinstance(event, EpochEnd):
            history.append(event)
        elif isinstance(event, transfer.FineTuned):
            st.session_state[f"{P}.tuned"] = event
        elif isinstance(event, transfer.Note):
            st.session_state[f"{P}.notes"].append(event.message)
    if not job.finished_state and history.epoch:
        st.progress(history.epoch[-1] / st.session_state[f"{P}.total"], text=f"epoch {history.epoch[-1]}")
        curves_ui({"fine-tuning": history}, key=f"{P}.live")


def render_fine_tune(source, target) -> None:
    st.subheader("Fine-tuning: a new head, then the top blocks")
    spec, k = spec_ui(source)
    st.latex(r"\theta_{\mathrm{head}} \leftarrow \theta_{\mathrm{head}} - \eta\,\nabla_{\mathrm{head}} L, \quad "
             r"\theta_{\mathrm{top}\,k} \leftarrow \theta_{\mathrm{top}\,k} - \eta f\,\nabla_{\mathrm{top}\,k} L, \quad "
             r"\theta_{\mathrm{rest}} \text{ frozen}")
    seconds = remembered(f"{P}.tune_estimate", (source.key, data_key(target), spec, k),
                         lambda: transfer.fine_tune_seconds(source, target, spec, k))
    if job_button_ui(f"{P}.tune", _tune_live, "Fine-tune", help=f"About {seconds:.0f} s here."):
        st.session_state.update({f"{P}.history": History(), f"{P}.notes": [], f"{P}.tuned": None,
                                 f"{P}.total": spec.head_epochs + spec.epochs})
        start(f"{P}.tune", _tune_live, transfer.fine_tune_job, label="Fine-tuning", estimate_s=seconds,
              source=source, target=target, spec=spec, per_class=k,
              name=unique_run_name(f"{source.title} → {target.title}"))
    tuned = st.session_state.get(f"{P}.tuned")
    if tuned is None:
        return
    st.caption(" ".join(f":material/info: {note}" for note in st.session_state[f"{P}.notes"]))
    if tuned.run is not None and tuned.run.name not in st.session_state.get("runs", {}):
        store_run(tuned.run, sources.fit_to_source(target, source)[0])
    curves_ui({"fine-tuning": tuned.history}, key=f"{P}.curves")
    left, right = st.columns(2)
    left.metric("Test accuracy", "— (cancelled)" if tuned.test_acc is None else f"{tuned.test_acc:.1%}")
    right.metric("Frozen BatchNorm moved", f"{tuned.bn_shift:.2f} σ",
                 help="Mean change of the frozen layers' running means, in the source's standard deviations.")
    st.caption("In eval mode frozen layers compute what they did for the source. In train mode they normalize each "
               "batch by its own statistics and overwrite their running averages: the head learns on features "
               "that differ from those it meets at test time.")


def render_curve(source, target) -> None:
    st.subheader("The few-shot curve")
    left, right = st.columns([3, 1])
    shots = left.multiselect("Images per class", SHOTS, key=f"{P}.shots", format_func=shots_label, max_selections=7,
                             help="Training images of each class; validation and test stay whole.")
    epochs = int(right.number_input("Epochs", 1, 20, key=f"{P}.curve_epochs", help="Per training run."))
    key = (source.key, data_key(target), tuple(sorted(shots)), epochs)
    seconds = remembered(f"{P}.curve_estimate", key,
                         lambda: transfer.curve_seconds(source, target, shots=shots, epochs=epochs))
    points = st.session_state.setdefault(f"{P}.curves", {}).setdefault(key, {})
    st.caption("Pixels + linear, features + linear, fine-tuned and from scratch at each size.")

    def keep(event) -> None:
        if isinstance(event, transfer.CurvePoint):
            points.setdefault(event.method, {})[event.per_class] = event.test_acc

    live = jobs.progress_live(f"{P}.curve", keep)
    too_long = jobs.too_long_ui(seconds, "fewer sizes or epochs")
    if job_button_ui(f"{P}.curve", live, "Draw the few-shot curve", disabled=too_long or not shots):
        start(f"{P}.curve", live, transfer.few_shot_curve, label="The few-shot curve", estimate_s=seconds,
              source=source, target=target, shots=shots, epochs=epochs, seed=seed())
    if points:
        st.plotly_chart(figs.few_shot_curve(points, presenter=presenter_mode()), width="stretch")
        st.caption("Where the solid lines rise above the dashed pixel baseline, transfer pays: usually with few "
                   "images per class. With many, training from scratch catches up.")


def render() -> None:
    chosen = source_and_target_ui()
    if chosen is not None:
        render_fine_tune(*chosen)
        render_curve(*chosen)


st.title("Fine-tuning & the few-shot curve")
lesson_link_ui("app_pages/architectures/fine_tuning.py")
st.markdown("Give a trained network a new classifier, train it with the rest frozen, then unfreeze the top "
            "blocks at a smaller learning rate. The few-shot curve shows when that beats the alternatives.")
with url_state(FIELDS, PRESETS):
    render()
