"""Prints, as one JSON document, the public names of the arq package this interpreter imports.

Run by the harness in the arq venv (``python arq_names.py``), so the list comes from the arq that the
differential scenarios run on, whatever its site-packages path. Three kinds of names:

- ``defined``: what each module defines itself (functions, classes, assignments), read from its source with
  ``ast``; for ``arq/__init__.py``, its ``__all__``;
- ``reexported``: what a module imports from another arq module at run time, with the module it comes from
  (``from .jobs import Job`` in ``arq.connections``, so ``from arq.connections import Job`` works; ``from
  arq.cron import CronJob`` likewise); imports under ``if TYPE_CHECKING`` are left out, as they do not exist
  when the code runs;
- ``submodules``: the arq modules ``import arq`` alone makes reachable as attributes (``arq.worker.func``).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

# names a module binds that are not arq's API: third-party modules it may import, the typing switch
NOT_API = {"pytz", "TYPE_CHECKING"}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _assigned(node: ast.stmt) -> list[str]:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign):
        targets = [node.target]
    names: list[str] = []
    for target in targets:
        elements = target.elts if isinstance(target, ast.Tuple) else [target]
        names += [e.id for e in elements if isinstance(e, ast.Name)]
    return names


def _arq_module(node: ast.ImportFrom) -> str | None:
    """The arq module an import takes names from (``from .jobs import``, ``from arq.jobs import``), else None."""
    if node.level == 1 and node.module:
        return node.module
    if node.level == 0 and node.module and node.module.startswith("arq."):
        return node.module.removeprefix("arq.")
    return None


def read_module(source: str) -> tuple[list[str], dict[str, str]]:
    """(names the module defines, {re-exported name: the arq module it comes from})."""
    defined: list[str] = []
    reexported: dict[str, str] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.append(node.name)
        elif isinstance(node, ast.If):  # `if TYPE_CHECKING: X = ... else: X = ...` defines X either way
            defined += [name for branch in node.body + node.orelse for name in _assigned(branch)]
        elif isinstance(node, ast.ImportFrom) and (source := _arq_module(node)) is not None:
            reexported.update({a.asname or a.name: source for a in node.names})
        else:
            defined += _assigned(node)
    public = [n for n in dict.fromkeys(defined) if not n.startswith("_") and n not in NOT_API]
    return public, {k: v for k, v in reexported.items() if not k.startswith("_")}


def main() -> None:
    spec = importlib.util.find_spec("arq")
    if spec is None or spec.origin is None:
        sys.exit("arq is not importable by this interpreter")
    package = Path(spec.origin).parent
    out: dict[str, Any] = {"defined": {}, "reexported": {}, "version": None}
    for path in sorted(package.glob("*.py")):
        module = "" if path.stem == "__init__" else path.stem
        if module == "__main__":
            continue
        defined, reexported = read_module(path.read_text())
        if not module:
            tree = ast.parse(path.read_text())
            exported = [n for n in tree.body if isinstance(n, ast.Assign) and _assigned(n) == ["__all__"]]
            defined = [ast.literal_eval(e) for e in exported[0].value.elts]  # type: ignore[attr-defined]
            reexported = {}  # arq/__init__'s imports are its __all__
        out["defined"][module] = defined
        out["reexported"][module] = reexported
    import arq

    out["submodules"] = sorted(
        name
        for name, value in vars(arq).items()
        if isinstance(value, types.ModuleType) and value.__name__ == f"arq.{name}"
    )
    out["version"] = arq.VERSION
    sys.stdout.write(json.dumps(out))


if __name__ == "__main__":
    main()
