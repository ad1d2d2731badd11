"""VisionExplorer: router. Sets the page config, draws the shared sidebar and runs the chosen page."""

import streamlit as st

from ui.sidebar import device_ui, sidebar_ui
from ui.topics import built_pages

st.set_page_config(page_title="VisionExplorer", page_icon=":material/visibility:", layout="wide")

home = st.Page("app_pages/start/home.py", title="Home", icon=":material/home:", default=True, url_path="home")
groups: dict[str, list] = {"": [home]}
for group, spec in built_pages():
    groups.setdefault(group, []).append(st.Page(spec.file, title=spec.title, icon=spec.icon, url_path=spec.url_path))

page = st.navigation(groups)
device_slot = sidebar_ui()
page.run()
device_ui(device_slot)  # after the page: its torch import must not delay the first paint
