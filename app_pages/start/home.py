"""Home: what VisionExplorer is, every topic (built or coming) and the lessons in lecture order.

Imports no torch: this is the first paint of a cold start.
"""

import streamlit as st

from ui.lessons import lesson_index
from ui.state import url_state
from ui.topics import TOPICS


def topics_ui() -> None:
    st.subheader("Topics")
    columns = st.columns(3)
    for i, topic in enumerate(TOPICS):
        with columns[i % 3].container(border=True):
            built = topic.built_pages
            if built:
                st.markdown(f"**{topic.title}**")
                for page in built:
                    st.page_link(page.file, label=page.title, icon=page.icon)
            else:
                st.markdown(f"**{topic.title}** · :gray-badge[coming]")
            st.caption(f"{topic.group} — {topic.summary}")


def lessons_ui() -> None:
    st.subheader("Lessons, in lecture order")
    lessons = lesson_index()
    if not lessons:
        st.info("No lessons yet.")
    for lesson in lessons:
        st.markdown(f"{lesson.position}. **{lesson.title}** — {lesson.summary}")
    st.page_link("app_pages/start/lessons.py", label="Open the lessons", icon=":material/menu_book:")


st.title("VisionExplorer")
st.markdown(
    "Learn deep-learning image classification by changing **real** networks and watching what "
    "happens. Every number, curve and picture here is computed for you, now, by PyTorch — "
    "nothing is pre-rendered. Start in the **Train Lab**: a CNN learns handwritten digits in a few "
    "seconds on a laptop."
)
with url_state([]):
    topics_ui()
    lessons_ui()
