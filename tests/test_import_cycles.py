"""No import circles between modules, and none hidden behind an import inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("concierge", "adapters", "scheduling")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _top_level_imports(tree: ast.Module, known: set[str]) -> set[str]:
    """Our modules imported when this module loads (not under TYPE_CHECKING, not inside functions)."""
    found: set[str] = set()
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, ast.If) and not _is_type_checking(node):
            body.extend(node.body + node.orelse)
        elif isinstance(node, ast.Try):
            body.extend(node.body)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in known}


def _local_imports(tree: ast.Module, known: set[str]) -> set[str]:
    """Our modules imported inside a function body."""
    found: set[str] = set()
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return {name for name in found if name in known}


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    paths = [path for layer in LAYERS for path in sorted((ROOT / layer).rglob("*.py"))
             if "migrations" not in path.parts]
    known = {_module_name(path) for path in paths}
    trees = {_module_name(path): ast.parse(path.read_text(), filename=str(path)) for path in paths}
    return ({name: _top_level_imports(tree, known) - {name} for name, tree in trees.items()},
            {name: _local_imports(tree, known) - {name} for name, tree in trees.items()})


def _cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start -> ... -> start through `graph`, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for following in sorted(graph.get(node, ())):
            if following == start:
                return [*path, start]
            if following not in seen:
                seen.add(following)
                stack.append((following, [*path, following]))
    return None


def test_the_discord_cards_forms_and_interactions_import_each_other_only_one_way():
    top, local = _graph()
    trio = {"adapters.discord.cards", "adapters.discord.forms", "adapters.discord.interactions"}
    assert {name: sorted(local[name]) for name in trio if local[name]} == {}
    combined = {name: top[name] | local[name] for name in top}
    assert {name: _cycle_through(combined, name) for name in trio if _cycle_through(combined, name)} == {}


def test_a_function_local_import_of_our_own_modules_hides_no_circle():
    top, local = _graph()
    hidden = {}
    for name, targets in local.items():
        for target in sorted(targets):
            if name in _reach(top, target):  # `target` imports `name` when it loads: a circle
                hidden[name] = target
    assert hidden == {}


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for following in graph.get(stack.pop(), ()):
            if following not in seen:
                seen.add(following)
                stack.append(following)
    return seen


def test_the_check_sees_a_circle():
    assert _cycle_through({"a": {"b"}, "b": {"c"}, "c": {"a"}}, "a") == ["a", "b", "c", "a"]
    assert _cycle_through({"a": {"b"}, "b": set()}, "a") is None


def test_no_test_module_imports_from_another_test_module():
    """Shared steps live in tests/support (or a conftest): a test module is only ever collected, never imported."""
    offending = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        names = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
                 and node.module.split(".")[-1].startswith("test_")}
        if names:
            offending[str(path.relative_to(ROOT))] = sorted(names)
    assert offending == {}
