"""Layers, no cycles: the import graph of ``src/twinsep`` read with :mod:`ast`.

Every module's imports are collected, at module level and inside functions (a deferred
import is still a dependency), and checked against the layering of the issue ("One shape
for every stage", item 5)::

    core (every top-level module of twinsep but pipeline.py)
      < exchange/ (file formats)
      < the stages, in plan order: ingest segment identify separate simulate models view
        schedule report (compare after identify; phantom, the test-data generator, on core
        and exchange only)
      < pipeline < cli

* no import cycle between modules;
* no ``from X import _private`` (nor ``X._private`` on an imported module, nor importing a
  private module) across modules: what another module needs is public;
* core imports no stage, ``exchange`` imports no stage, a stage imports only core,
  ``exchange`` and earlier stages; only ``cli`` imports ``cli`` and ``pipeline``; nothing in
  src but ``cli`` imports ``phantom``.

The detectors are checked on small synthetic graphs too, so that a test that cannot fail
does not pass for nothing.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT_PKG = "twinsep"

#: The plan stages in pipeline order (a stage may import only earlier ones).
STAGES = ["ingest", "segment", "identify", "separate", "simulate", "models", "view",
          "schedule", "report"]
#: Packages that are not plan stages, with the stages they may import...
OTHER_PACKAGES = {"compare": {"ingest", "segment", "identify"}, "phantom": set()}
#: ... and the stages that may import them: the report shows the growth section that
#: ``twinsep compare`` writes (``compare.report_rows``); nothing but the cli imports the
#: phantom.
IMPORTED_BY = {"compare": {"report"}, "phantom": set()}
#: Above every stage: the pipeline, then the command line.
TOP = ["pipeline", "cli"]

#: Edges allowed for now, each naming the pending change that removes it. Empty: none.
PENDING: dict[tuple[str, str], str] = {}


# --- the import graph -------------------------------------------------------------------
@dataclass(frozen=True)
class Import:
    """One imported name: ``module`` imports ``target`` (a module of twinsep) at ``line``;
    ``name`` is the name taken from it (``from target import name``), or the attribute
    read on it (``target.name``), or None for a plain ``import target``."""

    module: str
    target: str
    name: str | None
    line: int


def module_name(path: Path, src: Path = SRC) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """Absolute name of ``from {'.' * level}{name} import ...`` in ``module``."""
    if level == 0:
        return name or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str, tree: ast.AST, modules: set[str], is_package: bool = False
               ) -> list[Import]:
    """Every import of twinsep modules in ``tree`` (all levels: module, class, function)."""
    out: list[Import] = []
    aliases: dict[str, str] = {}  # local name -> module it is bound to

    def known(name: str) -> str | None:
        """The longest twinsep module that ``name`` is or lies in."""
        parts = name.split(".")
        for n in range(len(parts), 0, -1):
            cand = ".".join(parts[:n])
            if cand in modules:
                return cand
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] != ROOT_PKG:
                    continue
                target = known(a.name)
                if target is None:
                    continue
                out.append(Import(module, target, None, node.lineno))
                if a.asname:
                    aliases[a.asname] = target
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            if base.split(".")[0] != ROOT_PKG:
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in modules:  # from package import submodule
                    out.append(Import(module, sub, None, node.lineno))
                    aliases[a.asname or a.name] = sub
                else:
                    target = known(base)
                    if target is not None:
                        out.append(Import(module, target, a.name, node.lineno))
    # attributes read on an imported module: ``mod._helper``
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases):
            out.append(Import(module, aliases[node.value.id], node.attr, node.lineno))
    return out


def source_modules(src: Path = SRC) -> dict[str, Path]:
    return {module_name(p, src): p for p in sorted((src / ROOT_PKG).rglob("*.py"))}


def all_imports(src: Path = SRC) -> list[Import]:
    files = source_modules(src)
    names = set(files)
    out: list[Import] = []
    for mod, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        out += imports_of(mod, tree, names, is_package=path.name == "__init__.py")
    return out


def graph(imports: Iterable[Import]) -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for imp in imports:
        if imp.target != imp.module:
            g.setdefault(imp.module, set()).add(imp.target)
    return g


def find_cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted, and
    self-loops: every import cycle, one entry per tangle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    nodes = set(g) | {t for ts in g.values() for t in ts}

    def strong(v: str) -> None:  # iterative Tarjan
        work = [(v, iter(sorted(g.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1 or node in g.get(node, ()):
                    out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            strong(v)
    return sorted(out)


# --- layers -------------------------------------------------------------------------
def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(imports: Iterable[Import]) -> list[str]:
    """``module:line imports target.name`` for each private name or module taken from
    another module (a private module, such as ``cli/_app.py``, is private to its package)."""
    out = []
    for imp in imports:
        if imp.target == imp.module:
            continue
        if imp.name is not None and _private(imp.name):
            out.append(f"{imp.module}:{imp.line} uses {imp.target}.{imp.name}")
        private_mod = [p for p in imp.target.split(".") if _private(p)]
        if private_mod:
            owner = imp.target.rsplit(".", 1)[0]
            if not (imp.module == owner or imp.module.startswith(owner + ".")):
                out.append(f"{imp.module}:{imp.line} imports private module {imp.target}")
    return out


def layer_of(module: str) -> str:
    """``core``, ``exchange``, a stage or package name, ``pipeline`` or ``cli``."""
    parts = module.split(".")
    if len(parts) == 1:
        return "core"  # twinsep/__init__.py: the version, nothing else
    top = parts[1]
    if top == "__main__":
        return "cli"  # ``python -m twinsep`` runs the command line
    if len(parts) == 2 and top not in STAGES and top not in OTHER_PACKAGES and top not in (
            "exchange", "cli", "pipeline"):
        return "core"  # image, casefolder, labels, errors, colours, mesh, settings, ...
    return top


def allowed(src: str, dst: str) -> bool:
    """May a module of layer ``src`` import one of layer ``dst``?"""
    if src == dst or dst == "core":
        return True
    if src == "core":
        return False
    if dst == "exchange":
        return True
    if src == "exchange":
        return False
    if dst == "cli":
        return False  # only cli imports cli (src == dst above)
    if dst in ("pipeline", "phantom"):
        return src == "cli"
    if src in TOP:
        return True
    if dst in OTHER_PACKAGES:
        return src in IMPORTED_BY.get(dst, set())
    if src in OTHER_PACKAGES:
        return dst in OTHER_PACKAGES[src]
    if src in STAGES:
        return dst in STAGES and STAGES.index(dst) < STAGES.index(src)
    return False


def layer_violations(imports: Iterable[Import], pending: dict | None = None) -> list[str]:
    pending = PENDING if pending is None else pending
    out = []
    for imp in imports:
        a, b = layer_of(imp.module), layer_of(imp.target)
        if not allowed(a, b) and (a, b) not in pending:
            out.append(f"{imp.module}:{imp.line} ({a}) imports {imp.target} ({b})")
    return sorted(set(out))


# --- the tests ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def imports() -> list[Import]:
    return all_imports()


def test_every_module_is_read(imports):
    mods = source_modules()
    assert {"twinsep.image", "twinsep.pipeline", "twinsep.cli", "twinsep.exchange.gltf",
            "twinsep.models.surfaces"} <= set(mods)
    assert len(imports) > 100


def test_no_import_cycle(imports):
    cycles = [c for c in find_cycles(graph(imports))
              if not any((a, b) in PENDING for a in c for b in c)]
    assert cycles == [], "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_private_import_across_modules(imports):
    bad = private_imports(imports)
    assert bad == [], "private names used across modules:\n" + "\n".join(bad)


def test_layers(imports):
    bad = layer_violations(imports)
    assert bad == [], "imports against the layers:\n" + "\n".join(bad)


# --- the detectors can fail ---------------------------------------------------------------
def _parse(module: str, code: str, modules: set[str], package: bool = False) -> list[Import]:
    return imports_of(module, ast.parse(code), modules, is_package=package)


def test_cycle_detector_finds_cycles():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": {"g"}}
    assert find_cycles(g) == [["a", "b", "c"], ["e"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_import_reader_sees_deferred_relative_and_attribute_imports():
    mods = {"twinsep", "twinsep.schedule", "twinsep.schedule.model",
            "twinsep.schedule.heuristic", "twinsep.image"}
    code = (
        "from twinsep.image import Volume\n"
        "def f():\n"
        "    from .heuristic import _greedy\n"
        "    from twinsep.schedule import heuristic as h\n"
        "    return h._other\n"
    )
    got = _parse("twinsep.schedule.model", code, mods)
    assert {(i.target, i.name) for i in got} == {
        ("twinsep.image", "Volume"), ("twinsep.schedule.heuristic", "_greedy"),
        ("twinsep.schedule.heuristic", None), ("twinsep.schedule.heuristic", "_other")}
    back = _parse("twinsep.schedule.heuristic", "import twinsep.schedule.model\n", mods)
    assert find_cycles(graph(got + back)) == [["twinsep.schedule.heuristic",
                                               "twinsep.schedule.model"]]
    assert private_imports(got) == [
        "twinsep.schedule.model:3 uses twinsep.schedule.heuristic._greedy",
        "twinsep.schedule.model:5 uses twinsep.schedule.heuristic._other"]


@pytest.mark.parametrize("module,code,bad", [
    ("twinsep.simulate.core", "from twinsep.models.surfaces import x\n", True),  # later stage
    ("twinsep.models.surfaces", "from twinsep.simulate import cranium\n", False),  # earlier
    ("twinsep.image", "def f():\n    import twinsep.simulate\n", True),  # core on a stage
    ("twinsep.exchange.gltf", "from twinsep.models import colours\n", True),
    ("twinsep.models.surfaces", "from twinsep.exchange import gltf\n", False),
    ("twinsep.report.build", "from twinsep.pipeline import run\n", True),
    ("twinsep.report.build", "from twinsep.compare import core\n", False),
    ("twinsep.models.surfaces", "from twinsep.phantom import y\n", True),
    ("twinsep.phantom.build", "from twinsep.segment import core\n", True),
    ("twinsep.compare.core", "from twinsep.identify import shared\n", False),
    ("twinsep.view.build", "from twinsep.cli import app\n", True),
    ("twinsep.cli.plan", "from twinsep.pipeline import run\n", False),
    ("twinsep.__main__", "from twinsep.cli import run\n", False),
])
def test_layer_rules(module: str, code: str, bad: bool):
    mods = {"twinsep", "twinsep.__main__", "twinsep.image", "twinsep.simulate",
            "twinsep.simulate.core", "twinsep.simulate.cranium", "twinsep.models",
            "twinsep.models.surfaces", "twinsep.exchange", "twinsep.exchange.gltf",
            "twinsep.pipeline", "twinsep.report", "twinsep.report.build", "twinsep.cli",
            "twinsep.cli.plan", "twinsep.phantom", "twinsep.phantom.build", "twinsep.segment",
            "twinsep.segment.core", "twinsep.compare", "twinsep.compare.core",
            "twinsep.identify", "twinsep.identify.shared", "twinsep.view", "twinsep.view.build"}
    imps = _parse(module, code, mods)
    assert imps, "the import was not read"
    assert bool(layer_violations(imps, pending={})) is bad


def test_layer_names():
    assert layer_of("twinsep.mesh") == "core" and layer_of("twinsep") == "core"
    assert layer_of("twinsep.pipeline") == "pipeline" and layer_of("twinsep.__main__") == "cli"
    assert layer_of("twinsep.exchange.dicom") == "exchange"
    assert layer_of("twinsep.simulate.cranium") == "simulate"
