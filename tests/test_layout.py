"""The engine's layout: no import circle between its modules (module-level or inside functions; imports
for type checkers only, under `if TYPE_CHECKING:`, never run and do not count)."""

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ENGINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)  # engine/X/__init__.py is engine.X


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The engine modules `path` imports anywhere in its body: `import engine.x`, `from engine.x import y`."""
    found = set()
    tree = ast.parse(path.read_text(), str(path))
    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                 for statement in block.body for n in ast.walk(statement)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("engine"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"  # `from engine import data` imports engine.data
                found.add(submodule if submodule in modules else node.module)
    return found & modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_graph() -> dict[str, set[str]]:
    paths = sorted(ENGINE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {_module_name(p): _imports(p, modules) - {_module_name(p)} for p in paths}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` (depth-first search), or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_import_graph_sees_known_edges():
    graph = import_graph()
    assert "engine.models.blocks" in graph["engine.models.classic"]
    assert "engine.data" in graph["engine.cli.common"]  # `from engine import data`
    assert "engine.errors" in graph["engine.registry"]


def test_imports_for_type_checkers_only_are_no_edges(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from engine.jobs import Job\n"
                      "from engine.errors import UserInputError\n")
    assert _imports(module, {"engine.jobs", "engine.errors"}) == {"engine.errors"}


def test_cycle_finder_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_engine_has_no_import_circle():
    cycle = _cycle(import_graph())
    assert cycle is None, "import circle: " + " → ".join(cycle)
