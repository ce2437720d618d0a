"""README "Layout" lists exactly the tree: every module and package, none that is gone."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LISTED_ROOTS = ("dags", "plugins", "include/album", "deploy", "devtools")


def listed_paths() -> list[str]:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"^## Layout\n.*?^```\n(.*?)^```", readme, re.S | re.M).group(1)
    paths, parents = [], []
    for line in block.splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        del parents[depth:]
        path = "".join(parents) + name
        paths.append(path)
        if name.endswith("/"):
            parents.append(name)
    return paths


def actual_modules() -> set[str]:
    return {str(path.relative_to(REPO)) for root in LISTED_ROOTS for path in (REPO / root).rglob("*.py")
            if path.name != "__init__.py"}


def test_layout_lists_every_module_and_no_other():
    listed = {p for p in listed_paths() if p.endswith(".py")}
    assert sorted(actual_modules() - listed) == [], "modules missing from README Layout"
    assert sorted(listed - actual_modules()) == [], "README Layout lists modules that do not exist"


def test_every_listed_folder_exists_and_every_layer_is_listed():
    folders = [p for p in listed_paths() if p.endswith("/")]
    assert [f for f in folders if not (REPO / f).is_dir()] == []
    layers = {str(p.parent.relative_to(REPO)) + "/" for p in (REPO / "include/album").glob("*/__init__.py")}
    assert layers <= set(folders)
