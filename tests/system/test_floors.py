"""The house's floors, read from the imports (every import, also those inside functions):
a lower floor never imports a higher one and the packages have no cycle between them.

  core (ground: records, labels, words, settings' helpers)
  sources, vision (stages)
  board, outputs (stages that show or send what vision made)
  app (the command line, the loop, the assembly, the services)
  devtools (benchmarks and generators that drive the App's pieces)
"""

from __future__ import annotations

import ast
from pathlib import Path

import fer_pi

PACKAGE = Path(fer_pi.__file__).parent
FLOOR = {"core": 0, "sources": 1, "vision": 1, "board": 2, "outputs": 2, "app": 3,
         "devtools": 4}
# the package's root modules every floor may use: its version and the machine's facts
ROOT_NAMES = {"__version__", "machine"}


def imports_of(path: Path) -> list[tuple[str, tuple[str, ...], int]]:
    """(module, names, line) of every fer_pi import in a file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "fer_pi":
                out.append((node.module, tuple(a.name for a in node.names), node.lineno))
        elif isinstance(node, ast.Import):
            out += [(a.name, (), node.lineno) for a in node.names
                    if a.name.split(".")[0] == "fer_pi"]
    return out


def package_of(module: str) -> str | None:
    """'fer_pi.vision.detect' -> 'vision'; the root's own modules -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FLOOR else None


def edges() -> list[tuple[str, str, str]]:
    """(from package, to package, where) for each import between two packages."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).parts
        here = rel[0] if len(rel) > 1 else None
        for module, names, line in imports_of(path):
            there = package_of(module)
            where = f"{'/'.join(rel)}:{line} imports {module}"
            if there is None and module in ("fer_pi", "fer_pi.machine"):
                if module == "fer_pi" and set(names) - ROOT_NAMES:
                    out.append((here or "(root)", "(root)", where))
                continue
            if there is not None and there != here:
                out.append((here or "(root)", there, where))
    return out


def test_every_package_is_on_a_floor():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert packages - {"models"} == set(FLOOR), "a new package needs a floor in this test"


def test_no_import_runs_up_a_floor():
    up = [where for a, b, where in edges()
          if a in FLOOR and b in FLOOR and FLOOR[b] > FLOOR[a]]
    assert not up, "imports from a lower floor to a higher one:\n" + "\n".join(up)


def test_the_ground_floor_imports_nothing_else_of_fer_pi():
    bad = [where for a, b, where in edges() if a == "core"]
    assert not bad, "\n".join(bad)


def test_stages_never_import_the_app():
    bad = [where for a, b, where in edges() if b == "app" and a not in ("app", "devtools",
                                                                         "(root)")]
    assert not bad, "\n".join(bad)


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for a, b, _ in edges():
        graph.setdefault(a, set()).add(b)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(a for a in graph if reaches(a, a, {a}))
    assert not cycles, f"packages in an import cycle: {cycles}"


def test_the_checker_sees_an_import_that_runs_up(tmp_path, monkeypatch):
    """The rule itself: a stage importing the App is found (or the tests above could never
    fail)."""
    fake = tmp_path / "fer_pi"
    for pkg in FLOOR:
        (fake / pkg).mkdir(parents=True)
        (fake / pkg / "__init__.py").write_text("")
    (fake / "vision" / "bad.py").write_text("def f():\n    from fer_pi.app.config import Config\n")
    (fake / "core" / "worse.py").write_text("from fer_pi.vision.detect import x\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    found = edges()
    assert ("vision", "app", "vision/bad.py:2 imports fer_pi.app.config") in found
    assert any(a == "core" and b == "vision" for a, b, _ in found)


def test_every_package_is_in_the_wheel():
    """pyproject.toml lists its packages by hand: one missing there is missing from every
    non-editable install (CI's, a Pi's), though an editable one hides it."""
    import tomllib

    from conftest import ROOT

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    source = ROOT / "device" / "fer_pi"  # the checkout's, whichever install is imported
    found = {"fer_pi"} | {f"fer_pi.{p.name}" for p in source.iterdir()
                          if (p / "__init__.py").exists()}
    assert found <= listed, f"not in pyproject.toml's packages: {sorted(found - listed)}"
