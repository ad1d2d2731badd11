"""VisionExplorer: router. Sets the page config, draws the shared sidebar and runs the chosen page."""

import streamlit as st

from ui.sidebar import device_ui, sidebar_ui
from ui.topics import built

st.set_page_config(page_title="VisionExplorer", page_icon=":material/visibility:", layout="wide")

home = st.Page("pages/home.py", title="Home", icon=":material/home:", default=True, url_path="home")
groups: dict[str, list] = {"": [home]}
for topic in built():
    groups.setdefault(topic.group, []).append(
        st.Page(topic.page, title=topic.title, icon=topic.icon, url_path=topic.url_path))

page = st.navigation(groups)
device_slot = sidebar_ui()
page.run()
device_ui(device_slot)
