"""How the modules depend on one another, and that each backend is a `Storage`.

Readers copy one backend, or one module of shared/, into their own project.
That works when the modules form layers: records and the filter plan below,
the backends above them, the protocol on top, and no module of shared/
importing, even lazily inside a function, a module that imports it back. And
a reader who keeps the Django ORM recipe must not need SQLAlchemy at all.
"""

import ast
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from integrations.django_app.orm_storage import DjangoOrmStorage
from shared.records import Storage
from shared.sql_storage import SqlStorage
from shared.storage import MemoryStorage

ROOT = Path(__file__).resolve().parent.parent


def shared_imports() -> dict[str, set[str]]:
    """Module of shared/ -> the modules of shared/ it imports, anywhere in it."""
    graph: dict[str, set[str]] = {}
    for path in sorted((ROOT / "shared").glob("*.py")):
        module = f"shared.{path.stem}"
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "shared":
                    imported |= {f"shared.{alias.name}" for alias in node.names}
                elif node.module.startswith("shared."):
                    imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.startswith("shared.")}
        graph[module] = imported - {module, "shared.__init__"}
    return graph


def test_no_import_cycle_among_shared_modules():
    graph = shared_imports()
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for imported in sorted(graph.get(module, ())):
            if imported in path:
                cycles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported in graph:
                visit(imported, [*path, imported])

    for module in graph:
        visit(module, [module])
    assert cycles == []


def test_the_graph_sees_lazy_imports():
    """The check above can fail: storage opens SqlStorage inside a function."""
    assert "shared.sql_storage" in shared_imports()["shared.storage"]


def test_the_orm_recipe_needs_no_sqlalchemy():
    code = (
        "import sys, django; django.setup(); "
        "import integrations.django_app.orm_storage; "
        "loaded = sorted(m for m in sys.modules "
        "if m.split('.')[0] == 'sqlalchemy' or m == 'shared.sql_storage'); "
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "integrations.django_app.settings",
        "SCIM_TOKEN": "structure-test",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(  # noqa: S603 (our own interpreter and code)
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


PROTOCOL_METHODS = [
    name
    for name, member in vars(Storage).items()
    if inspect.isfunction(member) and not name.startswith("_")
]


def test_the_protocol_has_the_eight_calls():
    assert sorted(PROTOCOL_METHODS) == sorted(
        [
            "get_record",
            "find_user_by_user_name",
            "list_records",
            "search_records",
            "save_record",
            "update_group",
            "delete_record",
            "reset",
        ]
    )


def test_the_reads_that_list_take_a_keyset_by_keyword_only():
    """Cursors (RFC 9865) resume `past` a position, `backwards` or not; nothing
    else in the Protocol changed for them."""
    for method in ("list_records", "search_records"):
        parameters = inspect.signature(getattr(Storage, method)).parameters.values()
        keyword_only = {
            p.name: p.default for p in parameters if p.kind == p.KEYWORD_ONLY
        }
        assert (method, keyword_only) == (method, {"past": None, "backwards": False})
    for method in set(PROTOCOL_METHODS) - {"list_records", "search_records"}:
        parameters = inspect.signature(getattr(Storage, method)).parameters.values()
        assert all(p.kind != p.KEYWORD_ONLY for p in parameters), method


@pytest.mark.parametrize("backend", [MemoryStorage, SqlStorage, DjangoOrmStorage])
@pytest.mark.parametrize("method", PROTOCOL_METHODS)
def test_every_backend_has_every_call_of_the_protocol(backend, method):
    """What a type checker would say: the same parameters, with the same defaults."""
    wanted = inspect.signature(getattr(Storage, method))
    found = inspect.signature(getattr(backend, method))
    simplify = [(p.name, p.kind, p.default) for p in wanted.parameters.values()]
    assert [(p.name, p.kind, p.default) for p in found.parameters.values()] == (
        simplify
    )
