"""Lessons: the course in lecture order, one lesson at a time, each with its quiz.

The open lesson round-trips through the URL (`/lessons?lesson=01_pixels_to_cnn`), so a topic
page's "📖 Lesson" link, a bookmark or a colleague's link opens it.
"""

import streamlit as st

from ui.lessons import Lesson, lesson_index, render_lesson, score_label
from ui.state import url_state

CURRENT_KEY = "lessons.current"  # slug of the open lesson; survives visits to other pages
PICKER_KEY = "lessons.picker"  # the selectbox's own key, set from CURRENT_KEY on every run
URL_KEY = "lesson"


def _open(slug: str) -> None:
    st.session_state[CURRENT_KEY] = slug
    st.query_params[URL_KEY] = slug


def _picked() -> None:
    _open(st.session_state[PICKER_KEY])


def current_slug(lessons: list[Lesson]) -> str:
    """The URL's lesson if it names one; else the last one opened this session; else the first."""
    slugs = [lesson.slug for lesson in lessons]
    wanted = st.query_params.get(URL_KEY)
    if wanted in slugs:
        slug = wanted
    elif wanted is not None:
        st.warning(f"There is no lesson “{wanted}”; showing the first lesson instead.", icon="⚠️")
        slug = slugs[0]
    else:
        slug = st.session_state.get(CURRENT_KEY)
        slug = slug if slug in slugs else slugs[0]
    _open(slug)
    return slug


def lesson_picker_ui(lessons: list[Lesson], slug: str) -> Lesson:
    """A selectbox of every lesson with the learner's score beside the title; returns the chosen one."""
    by_slug = {lesson.slug: lesson for lesson in lessons}
    labels = {s: f"{lesson.position}. {lesson.title}{score_label(lesson)}" for s, lesson in by_slug.items()}
    st.session_state[PICKER_KEY] = slug
    st.selectbox("Lesson", list(by_slug), key=PICKER_KEY, on_change=_picked, format_func=labels.__getitem__,
                 help="Lessons in lecture order. ✓ 3/4 is your last quiz score for that lesson.")
    return by_slug[slug]


def prev_next_ui(lessons: list[Lesson], lesson: Lesson, where: str) -> None:
    i = lessons.index(lesson)
    left, _, right = st.columns([1, 2, 1])
    if i > 0:
        previous = lessons[i - 1]
        left.button(f"← {previous.title}", key=f"lessons.prev.{where}", on_click=_open,
                    args=(previous.slug,), help="Previous lesson", width="stretch")
    if i + 1 < len(lessons):
        following = lessons[i + 1]
        right.button(f"{following.title} →", key=f"lessons.next.{where}", on_click=_open,
                     args=(following.slug,), help="Next lesson", width="stretch")


def render_course() -> None:
    lessons = lesson_index()
    if not lessons:
        st.info("No lessons yet.")
        return
    lesson = lesson_picker_ui(lessons, current_slug(lessons))
    st.divider()
    render_lesson(lesson)
    st.divider()
    prev_next_ui(lessons, lesson, "bottom")


st.title("Lessons")
st.markdown("Work through the course in lecture order. Each lesson explains one idea, sends you "
            "into a lab to see it happen, and ends with a short quiz.")
with url_state([]):  # the open lesson keeps its own URL key (`?lesson=`): picked by the selectbox's callback
    render_course()
