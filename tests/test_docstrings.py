"""The public API's docstrings, checked with numpydoc's validation (issue #16).

The public API is the ``__all__`` of every public module of otlens (the package walked,
``otlens.ot.*`` included; modules whose name starts with ``_`` are private and skipped): each
name there that the module defines itself (re-exports are checked where they are defined) and
is a function or a class, and the public methods and properties of those classes.

The numpydoc checks that fail the test, and why these:

- ``GL08`` (no docstring) and ``SS01`` (no one-line summary): a public object says what it is;
- ``PR01`` (a parameter not documented) and ``PR02`` (a documented parameter that does not
  exist): the Parameters section matches the signature, so it cannot rot when a signature
  changes. A class's constructor parameters may instead be its documented attributes (an
  Attributes section, or a ``#:`` comment on a dataclass field, which Sphinx autodoc shows),
  its bases' included;
- ``PR07`` (a parameter with no description): a name alone documents nothing;
- ``RT01`` (no Returns section, for a function or method that returns a value; a class, a
  property and a function that returns None are exempt) and ``RT03`` (a return value with no
  description): the caller knows what comes back;
- ``YD01`` (a generator with no Yields section);
- ``SA04`` (a See Also entry with no description): a cross-link says why to follow it.

Left out: the style checks (capitalisation, full stops, section order: ``GL01``–``GL03``,
``SS02``–``SS06``, ``PR08``–``PR10``, ``RT02``, ``RT04``, ``RT05``), ``PR03``/``PR04``/``PR06``
(parameter order and type spellings), ``SA01`` (a See Also everywhere) and ``EX01`` (examples
everywhere): they judge form, not whether the API is documented.

Two more checks of the issue: array shapes are written ``[n, d]`` (not ``(n, d)``), and each
point-cloud solver's See Also links every sibling solver.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

pytest.importorskip("numpydoc", reason="numpydoc (the dev extra) is not installed")
from numpydoc.docscrape import ClassDoc, FunctionDoc  # noqa: E402
from numpydoc.validate import validate  # noqa: E402

import otlens  # noqa: E402

CHECKS = ("GL08", "SS01", "PR01", "PR02", "PR07", "RT01", "RT03", "YD01", "SA04")

#: The point-cloud solvers; each one's See Also names all the others.
SOLVERS = {
    "sinkhorn": "otlens.ot.entropic.sinkhorn",
    "sinkhorn_divergence": "otlens.ot.entropic.sinkhorn_divergence",
    "exact_ot": "otlens.ot.exact.exact_ot",
    "hiref": "otlens.ot.refinement.hiref",
    "frlc": "otlens.ot.lowrank.frlc",
    "solve": "otlens.ot.dispatch.solve",
}


def _modules() -> list[str]:
    names = ["otlens"] + [m.name for m in pkgutil.walk_packages(otlens.__path__, "otlens.")]
    return sorted(n for n in names if not any(part.startswith("_") for part in n.split(".")))


MODULES = _modules()


def _public_objects(module_name: str) -> list[tuple[str, object]]:
    """(import path, object) of every function and class ``module_name`` defines in its ``__all__``."""
    mod = importlib.import_module(module_name)
    out: list[tuple[str, object]] = []
    for name in getattr(mod, "__all__", ()):
        obj = getattr(mod, name)
        if getattr(obj, "__module__", None) != module_name:
            continue  # a re-export: checked where it is defined
        if inspect.isfunction(obj):
            out.append((f"{module_name}.{name}", obj))
        elif inspect.isclass(obj):
            out.append((f"{module_name}.{name}", obj))
            for attr, value in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if inspect.isfunction(value) or isinstance(value, (staticmethod, classmethod, property)):
                    out.append((f"{module_name}.{name}.{attr}", value))
    return out


_FIELD_COMMENT = re.compile(r"^\s+(\w+)\s*:[^#]*#:\s*\S")


def _commented_fields(cls: type) -> set[str]:
    """Dataclass fields documented by a ``#:`` comment on the field's line or the line above."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return set()
    out = set()
    for i, line in enumerate(lines):
        m = _FIELD_COMMENT.match(line)
        if m:
            out.add(m.group(1))
        elif i and lines[i - 1].strip().startswith("#:"):
            m = re.match(r"^\s+(\w+)\s*:", line)
            if m:
                out.add(m.group(1))
    return out


def _errors(path: str, obj: object) -> list[str]:
    errors = [(code, msg) for code, msg in validate(path)["errors"] if code in CHECKS]
    if inspect.isclass(obj) and any(code == "PR01" for code, _ in errors):
        documented: set[str] = set()
        for cls in obj.__mro__[:-1]:  # a dataclass inherits its bases' fields and their documentation
            doc = ClassDoc(cls, config={"show_class_members": False})
            listed = [p.name for p in doc["Parameters"]] + [p.name for p in doc["Attributes"]]
            documented |= _commented_fields(cls) | {n.strip() for name in listed for n in name.split(",")}
        undocumented = set(inspect.signature(obj).parameters) - documented
        errors = [(c, m) for c, m in errors if c != "PR01"]
        if undocumented:
            errors.append(("PR01", f"Parameters {sorted(undocumented)} not documented"))
    return [f"{code} {msg}" for code, msg in errors]


@pytest.mark.parametrize("module_name", MODULES)
def test_public_docstrings(module_name):
    """Every public function, class and method of the module passes the numpydoc checks above."""
    problems = []
    for path, obj in _public_objects(module_name):
        errors = _errors(path, obj)
        if errors:
            problems.append(f"{path}: " + "; ".join(errors))
    assert not problems, f"{len(problems)} docstrings of {module_name} fail numpydoc's checks:\n" + "\n".join(problems)


_PAREN_SHAPE = re.compile(r"\bshape\s*\(|\((?:[A-Za-z]\w*|\d+), ?(?:[A-Za-z]\w*|\d+)(?:, ?(?:[A-Za-z]\w*|\d+))*\)\s*(?:array|tensor|matrix)")


@pytest.mark.parametrize("module_name", MODULES)
def test_shapes_in_brackets(module_name):
    """Array shapes in the public docstrings are written ``[n, d]``, not ``shape (n, d)``."""
    bad = []
    for path, obj in _public_objects(module_name):
        doc = inspect.getdoc(obj.fget if isinstance(obj, property) else obj) or ""
        for m in _PAREN_SHAPE.finditer(doc):
            bad.append(f"{path}: ...{doc[max(0, m.start() - 30):m.end() + 20]!r}")
    assert not bad, "shapes written in parentheses:\n" + "\n".join(bad)


def test_module_walk_covers_the_solvers():
    """The walk reaches the solver subpackage (a broken walk would make the checks above vacuous)."""
    assert {"otlens.ot.entropic", "otlens.ot.refinement", "otlens.ot.dispatch"} <= set(MODULES)
    paths = {p for m in MODULES for p, _ in _public_objects(m)}
    assert set(SOLVERS.values()) <= paths


@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_solvers_see_also_their_siblings(solver):
    """Each solver's See Also section links every other solver."""
    mod, _, name = SOLVERS[solver].rpartition(".")
    doc = FunctionDoc(getattr(importlib.import_module(mod), name))
    linked = {ref.split(".")[-1] for refs, _desc in doc["See Also"] for ref, _role in refs}
    missing = set(SOLVERS) - {solver} - linked
    assert not missing, f"{solver}'s See Also lacks {sorted(missing)}"
