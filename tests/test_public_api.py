"""The cookbook uses scim2-models through its public API only.

Readers copy this code. A name with a leading underscore (`_compare`,
`scim2_models.path.resolution._resolve_filter_path`, a module such as
`scim2_models._private`) can change or vanish in any scim2-models release, and
the copy breaks with it. Public means what `scim2_models` and
`scim2_models.path` export, and the public methods of those classes.

Every Python file of shared/, integrations/, bench/ and tests/, and every code
cell of notebooks/, is parsed with `ast` (nothing is imported or run) and
checked for:

- `from scim2_models... import _x`, and any import from a module path with a
  private segment (`from scim2_models._x import Y`, `import scim2_models._x`);
- attribute access `scim2_models.<...>._x`, through any name an import of
  scim2_models bound (`import scim2_models.path as p` then `p._x`,
  `from scim2_models import User` then `User._x`), and the same through
  `getattr(name, "_x")`;
- `importlib.import_module("scim2_models._x")` and `__import__(...)` alike.

Dunder names (`__schema__`, `__version__`) are Python protocol, not private.
"""

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "scim2_models"
SCANNED = ("shared", "integrations", "bench", "tests")


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_scim2_module(module: str | None) -> bool:
    return module is not None and (
        module == PACKAGE or module.startswith(PACKAGE + ".")
    )


def private_segment(dotted: str) -> str | None:
    return next((part for part in dotted.split(".") if is_private(part)), None)


class PrivateUses(ast.NodeVisitor):
    """Collect (line, message) for each private scim2-models name in a tree."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []
        # Local names an import of scim2_models bound: modules, classes, functions.
        self.bound: set[str] = set()

    def report(self, node: ast.AST, message: str) -> None:
        self.found.append((getattr(node, "lineno", 0), message))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if not is_scim2_module(alias.name):
                continue
            if (segment := private_segment(alias.name)) is not None:
                self.report(node, f"import {alias.name} (private module {segment})")
            # `import scim2_models.path` binds `scim2_models`, `as p` binds `p`.
            self.bound.add(alias.asname or alias.name.split(".")[0])
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and is_scim2_module(node.module):
            assert node.module is not None
            segment = private_segment(node.module)
            for alias in node.names:
                imported = f"from {node.module} import {alias.name}"
                if segment is not None:
                    self.report(node, f"{imported} (private module {segment})")
                elif is_private(alias.name):
                    self.report(node, f"{imported} (private name)")
                if alias.name != "*":
                    self.bound.add(alias.asname or alias.name)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = dotted_name(node)
        segment = private_segment(chain) if chain is not None else None
        if segment is not None and chain.split(".")[0] in self.bound:
            self.report(node, f"{chain} (private attribute {segment})")
            return  # one report per chain, not one per prefix
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = dotted_name(node.func)
        first = node.args[0] if node.args else None
        second = node.args[1] if len(node.args) > 1 else None
        if name in ("getattr", "hasattr", "setattr", "delattr") and first is not None:
            owner = dotted_name(first)
            if (
                owner is not None
                and owner.split(".")[0] in self.bound
                and isinstance(second, ast.Constant)
                and isinstance(second.value, str)
                and is_private(second.value)
            ):
                self.report(node, f"{name}({owner}, {second.value!r})")
        if (
            name in ("importlib.import_module", "import_module", "__import__")
            and isinstance(first, ast.Constant)
            and isinstance(first.value, str)
            and is_scim2_module(first.value)
            and private_segment(first.value) is not None
        ):
            self.report(node, f"{name}({first.value!r})")
        self.generic_visit(node)


def dotted_name(node: ast.AST) -> str | None:
    """`a.b.c` for a chain of attributes on a name, None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def private_uses(source: str, filename: str) -> list[tuple[int, str]]:
    visitor = PrivateUses()
    visitor.visit(ast.parse(source, filename))
    return visitor.found


def notebook_cells(path: Path) -> Iterator[tuple[int, str]]:
    """(cell number, source) of each code cell, IPython magics blanked out."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for number, cell in enumerate(notebook.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else source
        # A line magic or shell escape is not Python; keep line numbers intact.
        lines = [
            "" if line.lstrip().startswith(("%", "!")) else line
            for line in text.splitlines()
        ]
        yield number, "\n".join(lines)


def violations() -> Iterator[str]:
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            for line, message in private_uses(path.read_text(encoding="utf-8"), name):
                yield f"{name}:{line}: {message}"
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        name = path.relative_to(ROOT).as_posix()
        for cell, source in notebook_cells(path):
            for line, message in private_uses(source, f"{name} cell {cell}"):
                yield f"{name}: cell {cell}, line {line}: {message}"


def test_the_cookbook_uses_only_public_scim2_models_names():
    found = list(violations())
    assert not found, "private scim2-models names in use:\n" + "\n".join(found)


def test_the_scan_reads_every_folder_and_notebook():
    """A moved folder must not turn the check above into a silent pass."""
    for folder in SCANNED:
        assert list((ROOT / folder).rglob("*.py")), folder
    notebooks = list((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    assert any(
        source.strip() for path in notebooks for _, source in notebook_cells(path)
    )


@pytest.mark.parametrize(
    "source",
    [
        "from scim2_models.path.visitor import _compare",
        "from scim2_models import _effective_policy",
        "from scim2_models.path.resolution import coerce_value, _validate_operator",
        "from scim2_models._private import Thing",
        "from scim2_models.path._impl import Thing",
        "import scim2_models._private",
        "import scim2_models.path._impl as impl",
        "import scim2_models\nscim2_models.policy._effective_policy()",
        "import scim2_models.path as p\np.visitor._Evaluator",
        "from scim2_models import User\nUser._scim_name('user_name')",
        "from scim2_models import policy\npolicy._DEFAULT_POLICY",
        "import scim2_models\ngetattr(scim2_models.policy, '_effective_policy')",
        "import importlib\nimportlib.import_module('scim2_models._private')",
    ],
)
def test_the_check_catches(source):
    assert private_uses(source, "<example>")


@pytest.mark.parametrize(
    "source",
    [
        "from scim2_models import ScimFilter, ScimPolicy, default_comparison_key",
        "from scim2_models.path import FilterVisitor, AttributeBinding, coerce_value",
        "from scim2_models.path.expressions import Comparison",
        "import scim2_models\nscim2_models.User.__schema__",
        "from scim2_models import User\nUser.model_fields",
        "from scim2_models import __version__",
        "from shared import _private_of_ours\n_private_of_ours._x",
        "row._mapping",  # SQLAlchemy's, not scim2-models'
        "from . import _sibling",
    ],
)
def test_the_check_lets_public_names_through(source):
    assert private_uses(source, "<example>") == []
