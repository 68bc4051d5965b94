"""The package's shape: layers import only downwards with no exception, no two files import each other (even
inside functions), and the top level holds only the CLI entry and a handful of modules."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dlfound"
TOP_LEVEL = {"__init__", "__main__", "cli", "errors", "files", "image_files", "plots"}
PACKAGES = {"commands", "runs", "tasks", "data", "models", "metrics", "ops"}
# The layers, lowest first: a module may import its own layer and the layers below it, never one above, with no
# exception. The package's __init__ sits at the bottom because it holds only the version.
LAYERS = [
    "dlfound",  # __init__: __version__
    "errors",  # the error classes every message comes from
    "files",  # the one atomic writer (standard library only)
    "ops",  # plain tensor maths
    "image_files",  # reading and writing image files
    "plots",  # drawing pictures as pixel arrays
    "metrics",
    "models",
    "data",
    "tasks",
    "runs",
    "commands",
    "cli",
    "__main__",
]
ALLOWED = {name: set(LAYERS[: LAYERS.index(name) + 1]) for name in LAYERS}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every dlfound module this file imports, at the top or inside functions. `from package import module`
    counts as importing that module (Python runs the package's __init__ on the way to any of its modules;
    that is no edge of ours)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("dlfound"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("dlfound"):
            submodules = {f"{node.module}.{a.name}" for a in node.names} & modules
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(node.module)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in imports_of(path, set(modules)) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_no_import_cycles(graph):
    def visit(node, stack, done):
        if node in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(node) :] + [node]))
        if node in done:
            return
        for dep in graph[node]:
            visit(dep, stack + [node], done)
        done.add(node)

    done: set[str] = set()
    for node in graph:
        visit(node, [], done)


def layer(module: str) -> str:
    parts = module.split(".")[1:]
    return parts[0] if parts else "dlfound"


def test_layers_import_only_downwards(graph):
    wrong = []
    for module, deps in graph.items():
        if layer(module) not in ALLOWED:
            wrong.append(f"{module} is in no layer: place it in LAYERS")
            continue
        wrong += [
            f"{module} imports {dep}, a layer above it"
            for dep in sorted(deps)
            if layer(dep) not in ALLOWED[layer(module)]
        ]
    assert not wrong, "\n".join(wrong)


def test_the_top_level_holds_only_the_entry_and_a_handful_of_modules():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == TOP_LEVEL
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == PACKAGES
