"""Classic nets, trained here: LeNet, AlexNet, VGG, GoogLeNet, ResNet and DenseNet minis on one data set, compared."""

import json

import pandas as pd
import streamlit as st

from engine import models
from engine.errors import UserInputError
from engine.models.minis import plan
from engine.training.config import TrainConfig
from ui.figures.classic_nets import accuracy_vs_cost
from ui.lessons import lesson_link_ui
from ui.results import trained_runs_ui
from ui.sidebar import presenter_mode, seed
from ui.state import UrlField, flag, items, number, url_state
from ui.train_config import FIELDS as TRAIN_FIELDS, dataset_ui
from ui.train_panel import Job, curves_ui

P = "cn"
NETS = ["lenet5", "alexnet_mini", "vgg_mini", "inception_mini", "resnet_small", "densenet_mini"]
WIDTHS = [4, 8, 16, 32]
FIELDS = [f for f in TRAIN_FIELDS if f.key in ("train.data", "train.size")] + [
    items(f"{P}.nets", "nets", ["lenet5", "alexnet_mini", "vgg_mini", "inception_mini"], NETS),
    number(f"{P}.epochs", "ep", 10, 1, 50, int), number(f"{P}.lr", "lr", 2e-3, 1e-5, 0.1),
    UrlField(f"{P}.width", "w", 16, int, lambda v: v in WIDTHS),
    number(f"{P}.blocks", "blocks", 3, 1, 6, int), number(f"{P}.convs", "convs", 2, 1, 4, int),
    flag(f"{P}.aux", "aux", True), number(f"{P}.lam", "lam", 0.3, 0.0, 1.0),
    number(f"{P}.growth", "k", 12, 1, 32, int), number(f"{P}.layers", "layers", 3, 1, 8, int),
]
COLUMNS = ["test accuracy", "parameters", "MACs per image", "s per epoch", "epochs", "map side"]
FORMATS = {"test accuracy": st.column_config.NumberColumn(format="percent"),
           "parameters": st.column_config.NumberColumn(format="localized"),
           "MACs per image": st.column_config.NumberColumn(format="localized"),
           "s per epoch": st.column_config.NumberColumn(format="%.2f"),
           "epochs": st.column_config.NumberColumn(format="%d")}
PRESETS = {
    "lenet_alexnet_vgg_shapes": {"data": "shapes", "nets": ["lenet5", "alexnet_mini", "vgg_mini"], "ep": 3},
    "all_on_digits": {"data": "digits", "nets": NETS},
    "inception_aux": {"data": "digits", "nets": ["inception_mini"], "aux": True, "lam": 0.3, "ep": 8},
    "resnet_vs_densenet": {"data": "digits", "nets": ["resnet_small", "densenet_mini"], "ep": 8},
    "vgg_too_deep": {"data": "digits", "nets": ["lenet5", "vgg_mini"], "blocks": 4},
}


def options_ui() -> dict[str, dict]:
    """The chosen nets' own options; returns each net's option dict."""
    a, b, c, d = st.columns(4)
    width = a.select_slider("Width (AlexNet, VGG, Inception, ResNet)", WIDTHS, key=f"{P}.width",
                            help="Channels of the first conv (the originals: 64); the other layers scale with it.")
    blocks = b.number_input("VGG blocks", 1, 6, key=f"{P}.blocks",
                            help="Blocks of 3×3 convs, each halving the map with a 2×2 max-pool.")
    convs = b.number_input("3×3 convs per VGG block", 1, 4, key=f"{P}.convs",
                           help="Two 3×3 convs see a 5×5 window with 18C² weights instead of 25C².")
    aux = c.toggle("Inception aux classifier", key=f"{P}.aux",
                   help="A small classifier on inception4a, trained too and dropped at test time.")
    lam = c.slider("Aux loss weight λ", 0.0, 1.0, step=0.05, key=f"{P}.lam", disabled=not aux,
                   help="GoogLeNet used 0.3.")
    c.latex(r"L = L_{\mathrm{main}} + \lambda\,L_{\mathrm{aux}}")
    growth = d.number_input("DenseNet growth rate k", 1, 32, key=f"{P}.growth",
                            help="New maps each dense layer adds to everything before it.")
    layers = d.number_input("DenseNet layers per block", 1, 8, key=f"{P}.layers", help="Dense layers per block.")
    return {"lenet5": {}, "alexnet_mini": {"width": width}, "resnet_small": {"width": width},
            "vgg_mini": {"width": width, "blocks": int(blocks), "convs_per_block": int(convs)},
            "inception_mini": {"width": width, "aux": aux, "aux_weight": float(lam)},
            "densenet_mini": {"growth_rate": int(growth), "layers_per_block": int(layers)}}


@st.cache_data(max_entries=64, show_spinner=False)
def _planned(name: str, options_json: str, channels: int, classes: int, size: int) -> dict:
    """Parameters, MACs and how the map shrinks; raises the UserInputError naming a layer where it vanishes."""
    fp = plan(name, in_channels=channels, num_classes=classes, image_size=size, **json.loads(options_json))
    return {"parameters": fp.params, "MACs per image": fp.macs, "map side": " → ".join(str(s) for _, s in fp.sides)}


def plan_ui(configs: list[TrainConfig], dataset) -> tuple[list[TrainConfig], dict[str, dict]]:
    """The chosen nets' size and cost before training; the ones that do not fit say where, and are left out."""
    rows, fitting = {}, []
    for config in configs:
        try:
            rows[config.model] = _planned(config.model, json.dumps(config.model_options), dataset.channels,
                                          dataset.num_classes, dataset.image_size)
            fitting.append(config)
        except UserInputError as error:
            st.error(f"**{models.info(config.model).title}** is left out: {error}")
    return fitting, rows


def table_ui(rows: dict[str, dict], configs: list[TrainConfig], trained: dict) -> pd.DataFrame:
    """One table: each chosen net's size, cost and map, and its accuracy and time once trained with these settings."""
    for config in configs:
        run = next((r for r in trained.values() if r.config == config.to_dict()), None)
        if run is not None:
            seconds = run.history.seconds
            rows[config.model] |= {"test accuracy": run.history.test_acc, "epochs": len(run.history.epoch),
                                   "s per epoch": sum(seconds) / max(1, len(seconds))}
    table = pd.DataFrame({models.info(m).title: row for m, row in rows.items()}).T.reindex(columns=COLUMNS).dropna(
        axis=1, how="all")  # a column nothing has filled in yet would read "None" in every row
    st.dataframe(table, width="stretch", column_config=FORMATS)
    st.caption("MACs: multiply-accumulates per image at inference (FLOPs ≈ 2 × MACs). Map side: after each shrinking "
               "layer. Accuracy and seconds per epoch (on this shared machine) come once these settings train.")
    return table


def results_ui(trained: dict, table: pd.DataFrame) -> None:
    """The learning curves of the last training, and accuracy against cost of the nets trained as set above."""
    curves_ui({name: run.history for name, run in trained.items()}, key=f"{P}.curves")
    done = table.dropna(subset=["test accuracy"]) if "test accuracy" in table else table.iloc[:0]
    if not done.empty:
        left, right = st.columns(2)
        for column, cost in ((left, "parameters"), (right, "MACs per image")):
            points = {n: (float(row[cost]), float(row["test accuracy"])) for n, row in done.iterrows()}
            column.plotly_chart(accuracy_vs_cost(points, cost=cost, presenter=presenter_mode()), width="stretch",
                                key=f"{P}.vs.{cost}")


def render() -> None:
    dataset = dataset_ui()
    if dataset is None:
        return
    nets = st.multiselect("Nets", NETS, key=f"{P}.nets", format_func=lambda n: models.info(n).title,
                          help="In lecture order: LeNet-5 (1998), AlexNet (2012), VGG (2014), GoogLeNet (2014), "
                               "ResNet (2015), DenseNet (2017), each scaled down to train here.")
    per_net = options_ui()
    left, right = st.columns(2)
    epochs = left.number_input("Epochs", 1, 50, key=f"{P}.epochs", help="The same budget for every net.")
    lr = right.number_input("Learning rate η (Adam, one-cycle)", 1e-5, 0.1, format="%.4g", key=f"{P}.lr",
                            help="One recipe for all: Adam, batch 64, a one-cycle schedule with warm-up.")
    common = dict(data=dataset.name, image_size=dataset.image_size, optimizer="adam", lr=float(lr),
                  batch_size=min(64, len(dataset.train)), epochs=int(epochs), schedule="one_cycle", seed=seed())
    configs = [TrainConfig(model=n, model_options=per_net[n], **common) for n in nets]
    fitting, rows = plan_ui(configs, dataset)
    if not fitting:
        st.info("Pick at least one net that fits these images.")
        return
    table_slot = st.container()  # the table above the Train button, filled in once the runs are known
    trained = trained_runs_ui([Job(f"{c.model} on {dataset.name}", c, dataset) for c in fitting], key=f"{P}.train",
                              label=f"Train {len(fitting)} net{'s' * (len(fitting) > 1)}")
    with table_slot:
        table = table_ui(rows, fitting, trained)
    if trained:
        results_ui(trained, table)


st.title("Classic nets, trained here")
lesson_link_ui("app_pages/architectures/classic_nets.py")
st.markdown("The ImageNet winners from LeNet-5 to DenseNet, scaled down to train on this machine: pick some, "
            "train them with one recipe on the same images, and compare accuracy, parameters, MACs and time.")
with url_state(FIELDS, PRESETS):
    render()
