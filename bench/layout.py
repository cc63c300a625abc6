"""The layout as the code has it: top-level modules, import cycles, imports inside functions, and
imports that run up the layers of DESIGN's layout.

    python bench/layout.py            # the figures and every finding
    python bench/layout.py --check    # exit 1 when a cycle or an upward import is found

Read from the source with `ast`; nothing of the package is imported or run. An import inside
`if TYPE_CHECKING:` is not an import at run time and is left out.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "watcher"

# DESIGN "The layout", from the ground up: a module may import its own layer and the ones before it.
LAYERS = [
    ("ground", ["watcher", "watcher.errors", "watcher.times", "watcher.display"]),
    ("kinds", ["watcher.kinds"]),
    ("compare", ["watcher.compare"]),
    ("config", ["watcher.config"]),
    ("source", ["watcher.source"]),
    ("record", ["watcher.record"]),
    ("poll", ["watcher.poll"]),
    ("guard", ["watcher.rules", "watcher.declared", "watcher.export"]),
    ("alerts", ["watcher.alerts"]),
    ("run", ["watcher.run"]),
    ("edges", ["watcher.cli", "watcher.web", "watcher.sandbox", "watcher.migrations", "watcher.apply",
               "watcher.demo", "watcher.__main__"]),
]


@dataclass
class Module:
    name: str
    path: Path
    top: set[str] = field(default_factory=set)  # modules imported when it is imported
    inner: list[tuple[int, str, str]] = field(default_factory=list)  # (line, module, the line's reason)
    functions: list[int] = field(default_factory=list)  # lines of each function


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_modules() -> dict[str, Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations/versions" in path.as_posix():
            continue  # landed migrations are never edited
        name = module_name(path)
        modules[name] = Module(name, path)
    for module in modules.values():
        _read(module, modules)
    return modules


def _read(module: Module, modules: dict[str, Module]) -> None:
    source = module.path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source, str(module.path))
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                module.functions.append((child.end_lineno or child.lineno) - child.lineno + 1)
                visit(child, True)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(child, package, modules):
                    if in_function:
                        module.inner.append((child.lineno, target, _reason(lines, child.lineno)))
                    else:
                        module.top.add(target)
                continue
            visit(child, in_function)

    visit(tree, False)


def _targets(node: ast.Import | ast.ImportFrom, package: str, modules: dict[str, Module]) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "watcher"]
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    if base.split(".")[0] != "watcher":
        return []
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]


def _reason(lines: list[str], number: int) -> str:
    line = lines[number - 1]
    if "#" in line:
        return line.split("#", 1)[1].strip()
    before = lines[number - 2].strip() if number > 1 else ""
    return before[1:].strip() if before.startswith("#") else ""


def cycles(modules: dict[str, Module], *, with_inner: bool = False) -> list[list[str]]:
    """Strongly connected groups of modules that import each other at import time (Tarjan); `with_inner`:
    counting the imports inside functions too (a cycle that a lazy import only hides)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        wanted = set(modules[name].top)
        if with_inner:
            wanted |= {target for _line, target, _reason in modules[name].inner}
        for other in sorted(wanted):
            if other not in modules:
                continue
            if other not in index:
                connect(other)
                low[name] = min(low[name], low[other])
            elif other in stack:
                low[name] = min(low[name], index[other])
        if low[name] == index[name]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == name:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for name in sorted(modules):
        if name not in index:
            connect(name)
    return found


def layer_of(name: str) -> int | None:
    best = None
    for number, (_label, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or (prefix != "watcher" and name.startswith(prefix + ".")):
                best = number
    return best


def upward(modules: dict[str, Module]) -> list[str]:
    """Imports (at import time or inside a function) of a module in a higher layer."""
    found = []
    for module in modules.values():
        mine = layer_of(module.name)
        wanted = [(None, target) for target in sorted(module.top)] + [(line, t) for line, t, _r in module.inner]
        for line, target in wanted:
            theirs = layer_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                where = f"{module.name}:{line}" if line else module.name
                found.append(f"{where} -> {target} ({LAYERS[mine][0]} imports {LAYERS[theirs][0]})")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on a cycle or an upward import")
    options = parser.parse_args()
    modules = read_modules()
    top_level = sorted(m.path.name for m in modules.values() if m.path.parent == PACKAGE)
    packages = sorted(m.name for m in modules.values() if m.path.name == "__init__.py")
    found_cycles = cycles(modules)
    hidden = [group for group in cycles(modules, with_inner=True) if group not in found_cycles]
    inner = [(m.name, line, target, reason) for m in modules.values() for line, target, reason in m.inner]
    going_up = upward(modules)
    sizes = [n for m in modules.values() for n in m.functions]
    print(f"top-level modules: {len(top_level)}: {', '.join(top_level)}")
    print(f"packages: {len(packages)}: {', '.join(packages)}")
    print(f"modules: {len(modules)}; largest: " + ", ".join(
        f"{m.name} {len(m.path.read_text().splitlines())}" for m in
        sorted(modules.values(), key=lambda m: -len(m.path.read_text().splitlines()))[:5]))
    print(f"median function: {statistics.median(sizes):g} lines over {len(sizes)} functions")
    print(f"import cycles at import time: {len(found_cycles)}")
    for group in found_cycles:
        print("  " + " <-> ".join(group))
    print(f"import cycles once the imports inside functions run: {len(hidden)}")
    for group in hidden:
        print("  " + " <-> ".join(group))
    print(f"imports of watcher.* inside functions: {len(inner)}")
    for name, line, target, reason in sorted(inner):
        print(f"  {name}:{line} -> {target}" + (f"  # {reason}" if reason else "  (no reason given)"))
    print(f"imports up the layers: {len(going_up)}")
    for line in going_up:
        print("  " + line)
    non_empty = [m.name for m in modules.values() if m.path.name == "__init__.py" and m.top]
    print(f"package __init__ modules that import: {len(non_empty)}" + (f": {', '.join(non_empty)}" if non_empty else ""))
    return 1 if options.check and (found_cycles or hidden or going_up) else 0


if __name__ == "__main__":
    sys.exit(main())
