"""The package's layers: only the orchestration layer imports Airflow, and imports run downwards.

domain ← source, stores, providers ← steps ← orchestration ← admin. The product (include/,
dags/, plugins/) never imports the development tools. Every import counts, also those inside
functions and under TYPE_CHECKING.
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "include" / "album"
RANK = {"domain": 0, "source": 1, "stores": 1, "providers": 1, "steps": 2, "orchestration": 3, "admin": 4}


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if parts[:2] == ["include", "album"] and len(parts) > 2 and parts[2] in RANK else None


def package_modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(REPO).with_suffix("")
        modules[".".join(relative.parts)] = path
    return modules


def test_every_module_of_the_package_sits_in_a_layer():
    loose = [m for m in package_modules() if layer_of(m) is None
             and m not in ("include.album.__init__", "include.album.__main__")]
    assert loose == [], f"modules outside the layer packages {sorted(RANK)}: {loose}"


def test_only_the_orchestration_layer_imports_airflow():
    offenders = {module: sorted(n for n in imported_modules(path) if n == "airflow" or n.startswith("airflow."))
                 for module, path in package_modules().items() if layer_of(module) != "orchestration"}
    assert {m: names for m, names in offenders.items() if names} == {}


def test_no_layer_imports_a_higher_one():
    upward = []
    for module, path in package_modules().items():
        own = layer_of(module)
        if own is None:
            continue
        for name in imported_modules(path):
            other = layer_of(name)
            if other is not None and RANK[other] > RANK[own]:
                upward.append(f"{module} ({own}) imports {name} ({other})")
    assert upward == []


def test_the_product_never_imports_the_development_tools():
    product = [*PACKAGE.rglob("*.py"), *(REPO / "dags").glob("*.py"), *(REPO / "plugins").glob("*.py")]
    offenders = [f"{path.relative_to(REPO)}: {name}" for path in product for name in imported_modules(path)
                 if name.split(".")[0] in ("devtools", "tests")]
    assert offenders == []


def import_graph() -> dict[str, set[str]]:
    """Each module of the package -> the modules of the package it imports (lazily or not)."""
    modules = package_modules()
    graph = {}
    for module, path in modules.items():
        found = set()
        for name in imported_modules(path):
            while name and name not in modules:  # ``include.album.x.f`` -> the module ``include.album.x``
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
        graph[module] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (Tarjan's)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group = []
            while group[-1:] != [module]:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_no_modules_import_each_other_not_even_lazily():
    assert cycles(import_graph()) == []


def test_the_cycle_check_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_policy_sees_a_violation(tmp_path):
    # The checks above read imports the way this does; prove it finds each kind of import.
    source = tmp_path / "m.py"
    source.write_text("import airflow.sdk\ndef f():\n    from include.album.orchestration import tasks\n")
    assert {"airflow.sdk", "include.album.orchestration.tasks"} <= imported_modules(source)
    assert layer_of("include.album.orchestration.tasks") == "orchestration"
