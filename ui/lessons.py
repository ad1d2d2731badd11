"""Lessons: the index of `lessons/NN_slug.md`, the lesson renderer and its quiz.

A lesson file starts with TOML front matter between two `+++` lines:

    +++
    title = "From pixels to a trained CNN"
    summary = "One line for the index."
    order = 10                          # place in lecture order (the NN in the file name never changes)
    pages = ["app_pages/start/train_lab.py"]      # topic pages that show a link to this lesson

    [[quiz]]
    kind = "choice"                     # or "numeric"
    prompt = "…"
    options = ["…", "…"]
    answer = 1                          # option index (choice) or a number (numeric)
    tolerance = 0.0                     # numeric only: accepted |given - answer|
    explanation = "…"
    +++
    Markdown body ($…$ inline and $$…$$ display maths).

A body line that is only a link into the app, `[Try it](/train_lab?preset=cnn_digits)`, is drawn
as `st.page_link` so it switches page inside the session (a markdown link would open a new tab
and a new session, losing the learner's runs).

Parsing needs no Streamlit runtime; `lesson_index` is cached on the files' modification times.
"""

from __future__ import annotations

import functools
import math
import random
import re
import secrets
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qsl

import streamlit as st
from streamlit.errors import StreamlitAPIException

from ui.topics import page_file_for

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"
LESSONS_PAGE = "app_pages/start/lessons.py"
SCORES_KEY = "lessons.scores"  # {slug: (correct, total)}
RESULTS_KEY = "lessons.results"  # {slug: [bool per question]} of the last check
ANSWERS_KEY = "lessons.answers"  # {slug: {widget key: answer}} of the last check
SHUFFLE_KEY = "lessons.shuffle_seed"  # this learner's order of the options: a new session, a new order

_FENCE = "+++"
_FILE_RE = re.compile(r"^(\d{2})_([a-z0-9_]+)\.md$")
_APP_LINK_RE = re.compile(r"^\s*(?:[-*]\s+)?\[(?P<label>[^\]]+)\]\(/(?P<path>[a-z0-9_]+)(?:\?(?P<query>[^)\s]*))?\)\s*$")
_LESSON_KEYS = {"title", "summary", "order", "pages", "quiz"}
_QUESTION_KEYS = {"kind", "prompt", "options", "answer", "tolerance", "explanation"}


@dataclass(frozen=True)
class Question:
    kind: str  # "choice" | "numeric"
    prompt: str
    options: tuple[str, ...]
    answer: int | float  # option index (choice) or value (numeric)
    tolerance: float
    explanation: str

    def is_correct(self, given: int | float | None) -> bool:
        """`given` is the chosen option index (choice) or the entered number (numeric)."""
        if given is None:
            return False
        if self.kind == "choice":
            return int(given) == self.answer
        return abs(float(given) - self.answer) <= self.tolerance + 1e-9 * max(1.0, abs(self.answer))


@dataclass(frozen=True)
class Lesson:
    number: int
    slug: str  # the file stem, "01_pixels_to_cnn": the ?lesson= value (never changes: links use it)
    order: float  # the place in lecture order (default 10 × NN); new lessons slot in between
    title: str
    summary: str
    pages: tuple[str, ...]
    quiz: tuple[Question, ...]
    body: str
    path: Path
    position: int = 0  # 1, 2, 3… in the index: the number a learner sees

    def __repr__(self) -> str:
        return f"Lesson({self.slug!r}, {self.title!r}, {len(self.quiz)} questions)"


# ---- parsing (no Streamlit) -------------------------------------------------------------------

def _fail(path: Path, message: str) -> ValueError:
    return ValueError(f"lesson {path.name}: {message}")


def _split_front_matter(path: Path, text: str) -> tuple[str, str]:
    lines = text.lstrip("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != _FENCE:
        raise _fail(path, f"must start with a '{_FENCE}' line opening the TOML front matter")
    for i, line in enumerate(lines[1:], start=1):
        if line.strip() == _FENCE:
            return "".join(lines[1:i]), "".join(lines[i + 1:]).strip("\n")
    raise _fail(path, f"front matter is not closed by a second '{_FENCE}' line")


def _text(path: Path, where: str, table: dict, key: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, f"{where}{key} must be a non-empty string, got {value!r}")
    return value.strip()


def _parse_question(path: Path, i: int, raw: object) -> Question:
    where = f"quiz[{i}]."
    if not isinstance(raw, dict):
        raise _fail(path, f"quiz[{i}] must be a table ([[quiz]]), got {raw!r}")
    unknown = sorted(set(raw) - _QUESTION_KEYS)
    if unknown:
        raise _fail(path, f"quiz[{i}] has unknown keys {unknown}; allowed: {sorted(_QUESTION_KEYS)}")
    kind = raw.get("kind")
    prompt = _text(path, where, raw, "prompt")
    explanation = _text(path, where, raw, "explanation")
    answer = raw.get("answer")
    if kind == "choice":
        options = raw.get("options")
        if (not isinstance(options, list) or len(options) < 2
                or not all(isinstance(o, str) and o.strip() for o in options)):
            raise _fail(path, f"{where}options must be a list of at least 2 non-empty strings")
        if len(set(options)) != len(options):
            raise _fail(path, f"{where}options must be distinct, got {options}")
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(options):
            raise _fail(path, f"{where}answer must be an option index in 0..{len(options) - 1}, "
                              f"got {answer!r}")
        if "tolerance" in raw:
            raise _fail(path, f"{where}tolerance is for numeric questions only")
        return Question("choice", prompt, tuple(options), answer, 0.0, explanation)
    if kind == "numeric":
        if "options" in raw:
            raise _fail(path, f"{where}options are for choice questions only")
        if isinstance(answer, bool) or not isinstance(answer, (int, float)) or not math.isfinite(answer):
            raise _fail(path, f"{where}answer must be a finite number, got {answer!r}")
        tolerance = raw.get("tolerance", 0.0)
        if (isinstance(tolerance, bool) or not isinstance(tolerance, (int, float))
                or not math.isfinite(tolerance) or tolerance < 0):
            raise _fail(path, f"{where}tolerance must be a number ≥ 0, got {tolerance!r}")
        return Question("numeric", prompt, (), answer, float(tolerance), explanation)
    raise _fail(path, f"{where}kind must be 'choice' or 'numeric', got {kind!r}")


def parse_lesson(path: Path) -> Lesson:
    """Parse one lesson file; any problem raises ValueError naming the file."""
    path = Path(path)
    match = _FILE_RE.match(path.name)
    if not match:
        raise _fail(path, "file name must look like NN_slug.md (two digits, lowercase snake_case)")
    front, body = _split_front_matter(path, path.read_text(encoding="utf-8"))
    try:
        meta = tomllib.loads(front)
    except tomllib.TOMLDecodeError as err:
        raise _fail(path, f"front matter is not valid TOML: {err}") from err
    unknown = sorted(set(meta) - _LESSON_KEYS)
    if unknown:
        raise _fail(path, f"front matter has unknown keys {unknown}; allowed: {sorted(_LESSON_KEYS)}")
    pages = meta.get("pages", [])
    if not isinstance(pages, list) or not all(
            isinstance(p, str) and p.startswith("app_pages/") and p.endswith(".py") for p in pages):
        raise _fail(path, f"pages must be a list of 'app_pages/<group>/<name>.py' strings, got {pages!r}")
    order = meta.get("order", 10 * int(match.group(1)))
    if isinstance(order, bool) or not isinstance(order, (int, float)) or not math.isfinite(order):
        raise _fail(path, f"order must be a number (the lesson's place in lecture order), got {order!r}")
    quiz = meta.get("quiz", [])
    if not isinstance(quiz, list):
        raise _fail(path, f"quiz must be an array of tables ([[quiz]]), got {quiz!r}")
    if not body.strip():
        raise _fail(path, "the markdown body after the front matter is empty")
    return Lesson(
        number=int(match.group(1)), slug=path.stem, order=float(order),
        title=_text(path, "", meta, "title"), summary=_text(path, "", meta, "summary"),
        pages=tuple(pages), quiz=tuple(_parse_question(path, i, q) for i, q in enumerate(quiz)),
        body=body, path=path)


@functools.lru_cache(maxsize=8)
def _cached_index(folder: str, stamps: tuple[tuple[str, int, int], ...]) -> tuple[Lesson, ...]:
    lessons = sorted((parse_lesson(Path(folder) / name) for name, _, _ in stamps),
                     key=lambda lesson: (lesson.order, lesson.slug))
    for before, after in zip(lessons, lessons[1:]):
        if before.order == after.order:
            raise ValueError(f"lessons {before.path.name} and {after.path.name} share order "
                             f"{before.order:g}; each lesson needs its own place")
    lessons = [replace(lesson, position=i) for i, lesson in enumerate(lessons, start=1)]
    numbers = sorted(lesson.number for lesson in lessons)
    for before, after in zip(numbers, numbers[1:]):
        if before == after:
            raise ValueError(f"two lessons share the number {before:02d}; each lesson file needs its own NN")
    return tuple(lessons)


def lesson_index(folder: Path | str | None = None) -> list[Lesson]:
    """Every lesson in `folder` (default LESSONS_DIR), in lecture order; re-parsed only when a file changes."""
    folder = Path(LESSONS_DIR if folder is None else folder)
    if not folder.is_dir():
        return []
    stamps = tuple(sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size)
                          for p in folder.glob("*.md") if p.name[:2].isdigit()))
    return list(_cached_index(str(folder.resolve()), stamps))


def lesson_by_slug(slug: str, folder: Path | str | None = None) -> Lesson | None:
    return next((lesson for lesson in lesson_index(folder) if lesson.slug == slug), None)


def lessons_for_page(page_file: str, folder: Path | str | None = None) -> list[Lesson]:
    return [lesson for lesson in lesson_index(folder) if page_file in lesson.pages]


def app_links(body: str) -> list[tuple[str, str, dict[str, str]]]:
    """The lines of `body` that are a lone link into the app: (label, url_path, query params)."""
    links = []
    for line in _outside_code(body):
        match = _APP_LINK_RE.match(line)
        if match:
            links.append((match["label"], match["path"], dict(parse_qsl(match["query"] or ""))))
    return links


def _outside_code(body: str):
    fenced = False
    for line in body.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            yield ""
        else:
            yield "" if fenced else line


# ---- rendering (Streamlit) --------------------------------------------------------------------

def _page_link(page_file: str, label: str, query: dict[str, str] | None = None, icon: str | None = None) -> bool:
    """st.page_link when `page_file` is a page of this app's navigation; False (nothing drawn) if not."""
    try:
        st.page_link(page_file, label=label, icon=icon, query_params=query or None)
    except StreamlitAPIException:  # page not built yet, or the page runs on its own
        return False
    return True


def _body_ui(body: str) -> None:
    """Markdown in chunks; a line that is only an in-app link becomes a page link."""
    chunk: list[str] = []

    def flush() -> None:
        if "".join(chunk).strip():
            st.markdown("\n".join(chunk))
        chunk.clear()

    for raw, line in zip(body.splitlines(), _outside_code(body)):
        match = _APP_LINK_RE.match(line)
        if match:
            query = dict(parse_qsl(match["query"] or ""))
            flush()
            page_file = page_file_for(match["path"])
            if page_file and _page_link(page_file, match["label"], query, icon=":material/science:"):
                continue
        chunk.append(raw)
    flush()


def _check(lesson: Lesson) -> None:
    """Form-submit callback: grade every answer and store the score before the rerun draws."""
    results, answers = [], {}
    for i, question in enumerate(lesson.quiz):
        given = answers[_answer_key(lesson, i)] = st.session_state.get(_answer_key(lesson, i))
        if question.kind == "choice":
            given = question.options.index(given) if given in question.options else None
        results.append(question.is_correct(given))
    st.session_state.setdefault(RESULTS_KEY, {})[lesson.slug] = results
    st.session_state.setdefault(ANSWERS_KEY, {})[lesson.slug] = answers
    st.session_state.setdefault(SCORES_KEY, {})[lesson.slug] = (sum(results), len(results))


def _answer_key(lesson: Lesson, i: int) -> str:
    return f"lessons.{lesson.slug}.q{i}"


def shown_options(question: Question, *, seed: int, where: str) -> list[str]:
    """A choice question's options in the order one learner sees them: shuffled by their session's seed.

    Files list the correct option anywhere (often in the middle); a fixed order would teach its place.
    Answers are graded by the option's text, so the order never changes the key.
    """
    options = list(question.options)
    random.Random(f"{seed}|{where}").shuffle(options)
    return options


def _shuffle_seed() -> int:
    if SHUFFLE_KEY not in st.session_state:
        st.session_state[SHUFFLE_KEY] = secrets.randbits(32)
    return st.session_state[SHUFFLE_KEY]


def _is_integer_question(question: Question) -> bool:
    return float(question.answer).is_integer() and float(question.tolerance).is_integer()


def quiz_ui(lesson: Lesson) -> None:
    """The quiz as a form; after "Check answers", ✅/❌ and the explanation under each question."""
    if not lesson.quiz:
        return
    st.subheader("Quiz")
    results = st.session_state.get(RESULTS_KEY, {}).get(lesson.slug)
    # Widget state is dropped while another lesson or page is shown; bring back the checked answers.
    saved = st.session_state.get(ANSWERS_KEY, {}).get(lesson.slug, {})
    for i, question in enumerate(lesson.quiz):
        given = saved.get(_answer_key(lesson, i))
        if given is not None and _answer_key(lesson, i) not in st.session_state and (
                question.kind == "numeric" or given in question.options):  # options may have been edited
            st.session_state[_answer_key(lesson, i)] = given
    with st.form(f"lessons.{lesson.slug}.quiz"):
        for i, question in enumerate(lesson.quiz):
            label = f"**{i + 1}.** {question.prompt}"
            if question.kind == "choice":
                st.radio(label, shown_options(question, seed=_shuffle_seed(), where=_answer_key(lesson, i)),
                         index=None, key=_answer_key(lesson, i))
            elif _is_integer_question(question):
                st.number_input(label, value=None, step=1, key=_answer_key(lesson, i),
                                placeholder="a whole number")
            else:
                st.number_input(label, value=None, step=0.01, format="%g", key=_answer_key(lesson, i),
                                placeholder="a number")
            if results is not None and i < len(results):
                mark = "✅ Correct." if results[i] else "❌ Not quite."
                (st.success if results[i] else st.error)(f"{mark} {question.explanation}")
        st.form_submit_button("Check answers", type="primary", on_click=_check, args=(lesson,))
    score = st.session_state.get(SCORES_KEY, {}).get(lesson.slug)
    if score is not None:
        correct, total = score
        message = f"Score: **{correct}/{total}**"
        if correct == total:
            st.success(f"{message} — all correct!", icon=":material/celebration:")
        else:
            st.info(f"{message}. Read the explanations, change your answers and check again.")


def render_lesson(lesson: Lesson) -> None:
    """The lesson's title and summary, its body (maths; lone in-app links as page links) and its quiz."""
    st.header(f"{lesson.position}. {lesson.title}")
    st.caption(lesson.summary)
    _body_ui(lesson.body)
    quiz_ui(lesson)


def score_label(lesson: Lesson) -> str:
    """' ✓ 3/4' once the learner has checked this lesson's quiz, else ''."""
    score = st.session_state.get(SCORES_KEY, {}).get(lesson.slug)
    return f"  ✓ {score[0]}/{score[1]}" if score else ""


def lesson_link_ui(page_file: str) -> None:
    """Under a topic page's title: '📖 Lesson: <title>', opening the Lessons page at that lesson."""
    for lesson in lessons_for_page(page_file):
        label = f"Lesson: {lesson.title}"
        if not _page_link(LESSONS_PAGE, label, {"lesson": lesson.slug}, icon=":material/menu_book:"):
            st.markdown(f"📖 [{label}](/lessons?lesson={lesson.slug})")
