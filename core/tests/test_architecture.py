"""The house's own rules, checked on the source: imports run one way and never in a circle,
no source file grows past 600 lines, and each rule code is spelled in one file only."""

import ast
import re
from pathlib import Path

import pytest

from core.errors import DomainCode

ROOT = Path(__file__).resolve().parents[2]
APPS = ("core", "inventory", "licensing", "portal")
# Which project packages each may import: portal uses the apps, licensing may use
# inventory, both use core, and core uses none of them.
ALLOWED = {
    "core": {"core"},
    "inventory": {"core", "inventory"},
    "licensing": {"core", "inventory", "licensing"},
    "portal": {"core", "inventory", "licensing", "portal"},
}
MAX_LINES = 600


def source_files(*, tests: bool = True):
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if "migrations" in parts or (not tests and "tests" in parts):
                continue
            yield path


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports, at any depth of its code."""
    found = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            # the longest known module the name is, or lies in
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph(*, tests: bool) -> dict[str, set[str]]:
    files = {module_name(path): path for path in source_files(tests=tests)}
    known = set(files)
    return {module: imported_modules(path, known) - {module} for module, path in files.items()}


def test_imports_run_one_way():
    against = [
        f"{module} imports {target}"
        for module, targets in import_graph(tests=False).items()
        for target in sorted(targets)
        if target.split(".")[0] not in ALLOWED[module.split(".")[0]]
    ]
    assert against == []


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle():
    # A package's __init__ that re-exports its modules is not a cycle of its own modules.
    graph = {
        module: {t for t in targets if not module.startswith(t + ".")}
        for module, targets in import_graph(tests=True).items()
    }
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("path", list(source_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_source_file_over_600_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_LINES


def test_each_rule_code_is_spelled_in_one_file():
    """Tests say the codes as the API's clients do; everywhere else refers to DomainCode."""
    texts = {
        path: path.read_text()
        for pattern in ("*.py", "*.html", "*.js")
        for app in (*APPS, "templates", "static")
        for path in (ROOT / app).rglob(pattern)
        if "tests" not in path.parts and "migrations" not in path.parts and "vendor" not in path.parts
    }
    spelled = {
        code.value: sorted(str(path.relative_to(ROOT)) for path, text in texts.items()
                           if re.search(rf"[\"']{code.value}[\"']", text))
        for code in DomainCode
    }
    assert spelled == {code.value: ["core/errors.py"] for code in DomainCode}
