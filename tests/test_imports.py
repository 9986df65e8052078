"""The package's layering, read from the source: every import statement of every module, function-level
ones included (parsed with `ast`, nothing imported).

Searches (TE-NAS, EAS, zero-cost) share the run layer (`rayneas.runs`), the scoring layer and the
indicators, never each other's code; the shared layers import no search; no two modules import each
other, directly or round a longer loop.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rayneas"
SEARCHES = ("rayneas.tenas", "rayneas.eas", "rayneas.zero_cost")
#: Layers every search builds on; none of them may reach back into a search.
SHARED = ("rayneas.runs", "rayneas.scoring", "rayneas.indicators", "rayneas.spaces")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, root: Path = ROOT) -> set[str]:
    """Every dotted name an import statement of ``path`` may load: ``from a import b`` gives ``a`` and ``a.b``."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def package_imports() -> dict[str, set[str]]:
    """Module of the package → every name its imports may load."""
    return {module_name(path): imported_names(path) for path in sorted(PACKAGE.rglob("*.py"))}


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def import_graph(imports: dict[str, set[str]]) -> dict[str, list[str]]:
    """Module → the package's modules it imports (itself left out: a package's own names are no cycle)."""
    return {module: sorted(n for n in names if n in imports and n != module) for module, names in imports.items()}


def find_cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """One path per loop a depth-first walk meets, each closed on its first module (``[a, b, a]``)."""
    cycles: list[list[str]] = []
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(module: str) -> None:
        stack.append(module)
        on_stack.add(module)
        for target in graph.get(module, ()):
            if target in on_stack:
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in done:
                visit(target)
        stack.pop()
        on_stack.discard(module)
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module)
    return cycles


def test_the_walk_sees_function_level_and_relative_imports(tmp_path):
    imports = package_imports()
    assert "rayneas.demo" in imports["rayneas.cli"]  # imported inside `main`
    assert "rayneas.runs.settings" in imports["rayneas.tenas.search"]
    pkg = tmp_path / "rayneas" / "sub"
    pkg.mkdir(parents=True)
    (pkg / "mod.py").write_text("def f():\n    from . import other\n    from ..top import thing\n")
    assert imported_names(pkg / "mod.py", tmp_path) == {"rayneas.sub", "rayneas.sub.other", "rayneas.top",
                                                        "rayneas.top.thing"}


def test_find_cycles_reports_the_path():
    assert find_cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": ["b"], "b": [], "c": ["a", "b"]}) == []


def test_no_import_cycle_between_modules():
    cycles = find_cycles(import_graph(package_imports()))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_searches_do_not_import_each_other():
    crossings = [f"{module} imports {name}" for module, names in package_imports().items()
                 for search in SEARCHES if within(module, search)
                 for name in sorted(names) for other in SEARCHES if other != search and within(name, other)]
    assert not crossings, "; ".join(crossings)


def test_shared_layers_and_other_searches_do_not_import_tenas():
    leaning = [f"{module} imports {name}" for module, names in package_imports().items()
               if any(within(module, p) for p in ("rayneas.eas", "rayneas.zero_cost", "rayneas.indicators"))
               for name in sorted(names) if within(name, "rayneas.tenas")]
    assert not leaning, "; ".join(leaning)


def test_shared_layers_import_no_search():
    leaning = [f"{module} imports {name}" for module, names in package_imports().items()
               if any(within(module, layer) for layer in SHARED)
               for name in sorted(names) if any(within(name, search) for search in SEARCHES)]
    assert not leaning, "; ".join(leaning)
