"""Lessons: every shipped lesson parses and its quiz is answerable; the Lessons page works."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ui.lessons as lessons_module  # noqa: E402
from ui.lessons import LESSONS_DIR, app_links, lesson_index, parse_lesson  # noqa: E402
from ui.topics import TOPICS  # noqa: E402

LESSONS = lesson_index()
PLANNED_PAGES = {page.file for topic in TOPICS for page in topic.pages}
URL_PATHS = {page.url_path for topic in TOPICS for page in topic.pages} | {"home"}

GOOD_FRONT = '''+++
title = "T"
summary = "S"
pages = []

[[quiz]]
kind = "numeric"
prompt = "2 + 2?"
answer = 4
tolerance = 0
explanation = "Four."
+++
Body.
'''


def _lesson_file(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# ---- the shipped lessons ----------------------------------------------------------------------

def test_lessons_exist_and_parse():
    files = sorted(p.name for p in LESSONS_DIR.glob("*.md") if p.name[:2].isdigit())
    assert files, "no lessons shipped"
    assert sorted(lesson.path.name for lesson in LESSONS) == files  # the index is in `order`, not file order


def test_lessons_numbers_unique_and_ordered():
    numbers = [lesson.number for lesson in LESSONS]
    assert len(numbers) == len(set(numbers))


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_lesson_quiz_answers_valid(lesson):
    assert lesson.quiz, f"{lesson.slug} has no quiz"
    for question in lesson.quiz:
        if question.kind == "choice":
            assert 0 <= question.answer < len(question.options)
            assert question.is_correct(question.answer)
        else:
            assert question.kind == "numeric" and question.tolerance >= 0
            assert question.is_correct(question.answer + question.tolerance)
            assert not question.is_correct(question.answer + question.tolerance + 1)
        assert not question.is_correct(None)
        assert question.explanation


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_lesson_pages_exist(lesson):
    for page in lesson.pages:
        assert page in PLANNED_PAGES or (ROOT / page).is_file(), f"{lesson.slug} links to unknown {page}"


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda lesson: lesson.slug)
def test_lesson_app_links_point_at_pages(lesson):
    for label, url_path, _ in app_links(lesson.body):
        assert url_path in URL_PATHS, f"{lesson.slug}: link “{label}” goes to unknown /{url_path}"


def test_first_lesson_deep_links_train_lab_presets():
    first = LESSONS[0]
    presets = {query.get("preset") for _, path, query in app_links(first.body) if path == "train_lab"}
    assert presets >= {"linear_digits", "mlp_digits", "cnn_digits", "cnn_shapes", "lr_too_high"}


def test_first_lesson_quiz_mixes_kinds():
    kinds = [question.kind for question in LESSONS[0].quiz]
    # Six on the classifiers and curves, two on the glossary and the task types (last layer and loss).
    assert len(kinds) == 8 and {"choice", "numeric"} <= set(kinds)


def test_first_lesson_parameter_counts():
    # The arithmetic the lesson quotes: MLP 784-100-10 and 16 conv filters of 3×3 on one channel.
    assert 784 * 100 + 100 + 100 * 10 + 10 == 79_510
    assert 16 * (3 * 3 * 1 + 1) == 160
    body = LESSONS[0].body
    assert "79,510" in body and "160" in body


# ---- parsing errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, fragment", [
    ("title = 'x'\n", "must start with"),
    ("+++\ntitle = 'x'\nsummary = 's'\nBody", "not closed"),
    ("+++\ntitle = = 'x'\n+++\nBody", "not valid TOML"),
    ("+++\nsummary = 's'\n+++\nBody", "title"),
    ("+++\ntitle = 't'\nsummary = 's'\ncolour = 1\n+++\nBody", "unknown keys"),
    ("+++\ntitle = 't'\nsummary = 's'\npages = ['train_lab.py']\n+++\nBody", "pages"),
    (GOOD_FRONT.replace('kind = "numeric"', 'kind = "essay"'), "kind"),
    (GOOD_FRONT.replace("tolerance = 0", "tolerance = -1"), "tolerance"),
    (GOOD_FRONT.replace('kind = "numeric"', 'kind = "choice"\noptions = ["a", "b"]')
     .replace("tolerance = 0\n", ""), "answer must be an option index"),
    (GOOD_FRONT.replace("Body.\n", ""), "body"),
])
def test_malformed_front_matter_raises_naming_file(tmp_path, text, fragment):
    path = _lesson_file(tmp_path, "07_broken.md", text)
    with pytest.raises(ValueError, match="07_broken.md") as info:
        parse_lesson(path)
    assert fragment in str(info.value)
    with pytest.raises(ValueError, match="07_broken.md"):
        lesson_index(tmp_path)


def test_bad_file_name_and_duplicate_numbers_raise(tmp_path):
    _lesson_file(tmp_path, "01_a.md", GOOD_FRONT)
    _lesson_file(tmp_path, "01_b.md", GOOD_FRONT)
    with pytest.raises(ValueError, match="01_a.md"):
        lesson_index(tmp_path)
    with pytest.raises(ValueError, match="1_Bad-Name.md"):
        parse_lesson(_lesson_file(tmp_path, "1_Bad-Name.md", GOOD_FRONT))


def test_lesson_index_rereads_changed_files(tmp_path):
    path = _lesson_file(tmp_path, "03_c.md", GOOD_FRONT)
    assert lesson_index(tmp_path)[0].title == "T"
    path.write_text(GOOD_FRONT.replace('title = "T"', 'title = "Changed title"'), encoding="utf-8")
    assert lesson_index(tmp_path)[0].title == "Changed title"


# ---- the Lessons page -------------------------------------------------------------------------

def _lessons_page(query: dict[str, str] | None = None) -> AppTest:
    """The Lessons page through app.py, as a link to it opens it."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.run()
    at.switch_page("app_pages/start/lessons.py")
    at.query_params.update(query or {})
    return at.run(timeout=30)


def _answer(at: AppTest, lesson, *, wrong: int | None = None) -> None:
    for i, question in enumerate(lesson.quiz):
        key = f"lessons.{lesson.slug}.q{i}"
        if question.kind == "choice":
            index = (question.answer + 1) % len(question.options) if i == wrong else question.answer
            at.radio(key=key).set_value(question.options[index])
        else:
            at.number_input(key=key).set_value(question.answer + (question.tolerance + 1) * (i == wrong))
    next(b for b in at.form_submit_button if b.label == "Check answers").click()


def _texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def test_lessons_page_quiz_all_correct():
    lesson = LESSONS[0]
    at = _lessons_page({"lesson": lesson.slug})
    assert not at.exception
    assert lesson.title in _texts(at.header)
    _answer(at, lesson)
    at.run(timeout=30)
    assert not at.exception
    total = len(lesson.quiz)
    assert f"{total}/{total}" in _texts(at.success)
    assert at.session_state["lessons.scores"][lesson.slug] == (total, total)
    assert not at.error
    # the score shows beside the title in the picker
    assert any(f"✓ {total}/{total}" in o for o in at.selectbox(key="lessons.picker").options)


def test_lessons_page_wrong_answer_shows_explanation():
    lesson = LESSONS[0]
    at = _lessons_page({"lesson": lesson.slug})
    _answer(at, lesson, wrong=0)
    at.run(timeout=30)
    assert not at.exception
    total = len(lesson.quiz)
    assert at.session_state["lessons.scores"][lesson.slug] == (total - 1, total)
    assert lesson.quiz[0].explanation in _texts(at.error)
    assert f"{total - 1}/{total}" in _texts(at.info)


def test_lessons_page_unknown_slug_warns_and_opens_first():
    at = _lessons_page({"lesson": "unknown"})
    assert not at.exception
    assert "unknown" in _texts(at.warning)
    assert LESSONS[0].title in _texts(at.header)
    assert at.query_params["lesson"] == LESSONS[0].slug


def test_lessons_page_without_param_writes_url():
    at = _lessons_page()
    assert not at.exception and not at.warning
    assert at.query_params["lesson"] == LESSONS[0].slug


def test_lessons_page_next_previous_round_trip_url(tmp_path, monkeypatch):
    for number, slug in [(1, "first"), (2, "second"), (3, "third")]:
        _lesson_file(tmp_path, f"{number:02d}_{slug}.md",
                     GOOD_FRONT.replace('title = "T"', f'title = "Lesson {slug}"'))
    monkeypatch.setattr(lessons_module, "LESSONS_DIR", tmp_path)
    at = _lessons_page({"lesson": "02_second"})
    assert not at.exception
    assert "Lesson second" in _texts(at.header)
    at.number_input(key="lessons.02_second.q0").set_value(5)
    at.form_submit_button[0].click().run(timeout=30)
    assert "Four." in _texts(at.error)
    at.button(key="lessons.next.bottom").click().run(timeout=30)
    assert "Lesson third" in _texts(at.header)
    assert at.query_params["lesson"] == "03_third"
    assert not [b for b in at.button if b.key == "lessons.next.bottom"]
    assert not at.error  # lesson 3's quiz is unchecked
    assert any("2. Lesson second  ✓ 0/1" == o for o in at.selectbox(key="lessons.picker").options)
    at.button(key="lessons.prev.bottom").click().run(timeout=30)
    assert at.number_input(key="lessons.02_second.q0").value == 5  # the checked answer came back
    assert "Four." in _texts(at.error)
    at.button(key="lessons.prev.bottom").click().run(timeout=30)
    assert "Lesson first" in _texts(at.header)
    assert at.query_params["lesson"] == "01_first"
    at.selectbox(key="lessons.picker").set_value("03_third").run(timeout=30)
    assert "Lesson third" in _texts(at.header)
    assert at.query_params["lesson"] == "03_third"
    assert not at.exception


def test_lesson_link_ui_links_to_lesson():
    def page():
        from ui.lessons import lesson_link_ui
        lesson_link_ui("app_pages/start/train_lab.py")
        lesson_link_ui("app_pages/no_lesson_here.py")

    at = AppTest.from_function(page).run(timeout=30)
    assert not at.exception
    links = _texts(at.markdown) + _texts(at.get("page_link"))
    assert f"Lesson: {LESSONS[0].title}" in links
    assert len(at.markdown) + len(at.get("page_link")) == 1


def test_lessons_page_float_numeric_question(tmp_path, monkeypatch):
    text = (GOOD_FRONT.replace("answer = 4", "answer = 0.5").replace("tolerance = 0", "tolerance = 0.05")
            .replace('[[quiz]]', '[[quiz]]\nkind = "choice"\nprompt = "Pick b"\noptions = ["a", "b"]\n'
                     'answer = 1\nexplanation = "It is b."\n\n[[quiz]]', 1))
    _lesson_file(tmp_path, "01_floats.md", text)
    monkeypatch.setattr(lessons_module, "LESSONS_DIR", tmp_path)
    at = _lessons_page()
    assert [q.kind for q in lesson_index(tmp_path)[0].quiz] == ["choice", "numeric"]
    at.radio(key="lessons.01_floats.q0").set_value("b")
    at.number_input(key="lessons.01_floats.q1").set_value(0.54)
    at.form_submit_button[0].click().run(timeout=30)
    assert not at.exception
    assert at.session_state["lessons.scores"]["01_floats"] == (2, 2)


def test_order_key_sets_lecture_order_without_renaming_files(tmp_path):
    from ui.lessons import lesson_index

    for number, slug, order in [(1, "first", None), (2, "later", 30), (3, "slotted", 15)]:
        front = GOOD_FRONT if order is None else GOOD_FRONT.replace('pages = []', f'order = {order}\npages = []')
        _lesson_file(tmp_path, f"{number:02d}_{slug}.md", front)
    index = lesson_index(tmp_path)
    assert [lesson.slug for lesson in index] == ["01_first", "03_slotted", "02_later"]  # 10, 15, 30
    assert [lesson.position for lesson in index] == [1, 2, 3]


def test_shipped_lessons_have_distinct_orders():
    orders = [lesson.order for lesson in LESSONS]
    assert orders == sorted(set(orders))


# ---- quiz option order ------------------------------------------------------------------------

def _shown_order(at: AppTest, lesson) -> list[tuple[str, ...]]:
    return [tuple(at.radio(key=f"lessons.{lesson.slug}.q{i}").options)
            for i, q in enumerate(lesson.quiz) if q.kind == "choice"]


def test_quiz_options_are_shuffled_per_learner_stable_within_a_session_and_graded_by_text():
    lesson = next(lesson for lesson in LESSONS if sum(q.kind == "choice" for q in lesson.quiz) >= 2)
    choice = [q for q in lesson.quiz if q.kind == "choice"]
    positions = set()  # where the correct option of each question landed, over several learners
    orders = []
    for learner in range(6):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
        at.session_state["lessons.shuffle_seed"] = learner
        at.run()
        at.switch_page("app_pages/start/lessons.py")
        at.query_params["lesson"] = lesson.slug
        at.run(timeout=30)
        shown = _shown_order(at, lesson)
        assert [sorted(o) for o in shown] == [sorted(q.options) for q in choice]  # the same options, reordered
        positions |= {order.index(q.options[q.answer]) for order, q in zip(shown, choice)}
        orders.append(shown)
        at.run(timeout=30)
        assert _shown_order(at, lesson) == shown  # a rerun keeps this learner's order
        _answer(at, lesson)  # picks each correct option by its text
        at.run(timeout=30)
        assert not at.exception and not at.error
        assert at.session_state["lessons.scores"][lesson.slug] == (len(lesson.quiz), len(lesson.quiz))
        assert _shown_order(at, lesson) == shown
    assert len(set(map(tuple, orders))) > 1
    longest = max(len(q.options) for q in choice)
    assert 0 in positions and longest - 1 in positions  # the key is sometimes first, sometimes last


def test_a_new_session_draws_its_own_option_order():
    seeds = set()
    for _ in range(3):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
        at.run()
        at.switch_page("app_pages/start/lessons.py").run(timeout=30)
        seeds.add(at.session_state["lessons.shuffle_seed"])
    assert len(seeds) == 3


def test_shown_options_is_a_fixed_permutation_per_seed_and_question():
    from ui.lessons import Question, shown_options

    question = Question("choice", "?", ("a", "b", "c", "d"), 1, 0.0, "")
    assert sorted(shown_options(question, seed=3, where="q0")) == ["a", "b", "c", "d"]
    assert shown_options(question, seed=3, where="q0") == shown_options(question, seed=3, where="q0")
    assert len({tuple(shown_options(question, seed=s, where="q0")) for s in range(20)}) > 5
