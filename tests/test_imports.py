"""No import cycles inside huafeng/: the imports a module runs when it is imported (its top level,
including inside top-level if/try/with blocks and class bodies) form an acyclic graph.

Imports inside functions are left out on purpose: they run at call time, never while a module is
half-initialised, and they are how optional, heavy parts (export, ray, training) stay out of a plain
``import huafeng``. ``from PACKAGE import name`` counts as an import of the submodule when ``name`` is
one, else of the package itself."""
import ast
from pathlib import Path

import huafeng

ROOT = Path(huafeng.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _import_time_nodes(body):
    """Import statements run at import time: not inside functions, nor under ``if TYPE_CHECKING``."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                yield from _import_time_nodes(node.body)
            yield from _import_time_nodes(node.orelse)
        elif isinstance(node, (ast.Try, ast.With, ast.ClassDef)):
            for field in ("body", "orelse", "finalbody"):
                yield from _import_time_nodes(getattr(node, field, []))
            for handler in getattr(node, "handlers", []):
                yield from _import_time_nodes(handler.body)


def _targets(name: str, is_pkg: bool, node, modules) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    base = base[:len(base) - (node.level - 1)] if node.level else []
    mod = ".".join(base + ([node.module] if node.module else []))
    subs = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules]
    return subs + ([mod] if len(subs) < len(node.names) else [])


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in _import_time_nodes(ast.parse(path.read_text()).body):
            for dep in _targets(name, path.name == "__init__.py", node, modules):
                while dep and dep not in modules:  # `import huafeng.x.y` -> the deepest module that exists
                    dep = dep.rpartition(".")[0]
                if dep and dep != name:
                    deps.add(dep)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        path.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_the_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse("from .. import controls\nfrom .. import __version__\nif TYPE_CHECKING:\n    import x\n"
                     "def f():\n    from ..export import y\n")
    nodes = list(_import_time_nodes(tree.body))
    assert len(nodes) == 2  # neither the TYPE_CHECKING import nor the one inside a function
    mods = {"huafeng": None, "huafeng.controls": None, "huafeng.methods": None, "huafeng.methods.fast": None}
    assert _targets("huafeng.methods.fast", False, nodes[0], mods) == ["huafeng.controls"]  # a submodule
    assert _targets("huafeng.methods.fast", False, nodes[1], mods) == ["huafeng"]  # a name in the package


def test_no_import_cycle_inside_the_package():
    graph = import_graph()
    assert len(graph) > 20 and "huafeng.methods.fast" in graph["huafeng.methods"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _all_import_targets(path: Path, name: str, modules) -> set[str]:
    """Every module an import statement anywhere in the file names (functions included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update(_targets(name, path.name == "__init__.py", node, modules))
    return out


def test_methods_never_import_export():
    """Export asks the methods for their graphs (methods.export_graph); no method, at import time or
    at call time, imports huafeng.export: adding a method edits no export code and vice versa."""
    modules = _modules()
    methods = {n: p for n, p in modules.items() if n == "huafeng.methods" or n.startswith("huafeng.methods.")}
    assert len(methods) >= 6
    for name, path in methods.items():
        bad = sorted(t for t in _all_import_targets(path, name, modules) if t.split(".")[:2] == ["huafeng", "export"])
        assert not bad, f"{name} imports {', '.join(bad)}"
    # the checker itself sees an import inside a function
    tree = Path(ROOT / "backends.py")
    assert "huafeng.export.runtime" in _all_import_targets(tree, "huafeng.backends", modules)


def test_export_names_no_method():
    """huafeng/export/ reaches methods only through the registry (huafeng.methods and its graphs),
    never a method's own module."""
    modules = _modules()
    allowed = {"huafeng.methods", "huafeng.methods.graphs"}
    for name, path in modules.items():
        if name.startswith("huafeng.export"):
            bad = sorted(t for t in _all_import_targets(path, name, modules)
                         if t.startswith("huafeng.methods") and t not in allowed)
            assert not bad, f"{name} imports {', '.join(bad)}"
