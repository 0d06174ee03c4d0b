"""QuerySet.update(), bulk_create() and bulk_update() write no history: on a tracked model
they are allowed only in a function that writes the history itself (audit.history.
record_changes) or on the allow-list below, with the reason."""

from __future__ import annotations

import ast
from pathlib import Path

from audit.registry import tracked_models

ROOT = Path(__file__).resolve().parents[2]
BYPASS = {"update", "bulk_create", "bulk_update"}
# Folders that are not the application: tests, benchmarks, the virtualenv, migrations.
SKIP_PARTS = {"tests", "bench", "migrations", ".venv", "node_modules", "build", "var", "demo"}
# (file, model): why its bypass writes need no history.
ALLOWED = {
    # Demo seeding: rows created in bulk for an empty demo database; nobody changed them.
    ("accounts/demo.py", "PartnershipContact"),
    ("accounts/demo.py", "TrialPhase"),
    ("accounts/demo.py", "SuccessCriterion"),
}


def _root_model(node: ast.AST, assigned: dict[str, ast.AST], depth: int = 0) -> str | None:
    """The model name at the root of Model.objects....<call>, following local variables."""
    saw_manager = False
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            saw_manager = saw_manager or node.attr in ("objects", "_default_manager")
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            break
    if isinstance(node, ast.Name):
        if saw_manager:
            return node.id
        if node.id in assigned and depth < 4:
            return _root_model(assigned[node.id], assigned, depth + 1)
    return None


def bypass_writes(source: str, tracked: set[str]) -> list[tuple[int, str, str]]:
    """(line, model, method) of every bypass write on a tracked model in a function (or
    module) that does not call record_changes."""
    tree = ast.parse(source)
    found = []
    scopes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))]
    for scope in scopes:
        own = list(_own_nodes(scope))
        assigned = {
            t.id: n.value
            for n in own
            if isinstance(n, ast.Assign)
            for t in n.targets
            if isinstance(t, ast.Name)
        }
        records = any(
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Name | ast.Attribute)
            and getattr(n.func, "id", getattr(n.func, "attr", "")) == "record_changes"
            for n in own
        )
        for n in own:
            if not (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.attr in BYPASS
            ):
                continue
            model = _root_model(n.func.value, assigned)
            if model in tracked and not records:
                found.append((n.lineno, model, n.func.attr))
    return found


def _own_nodes(scope: ast.AST):
    """The nodes of a function (or module) without those of the functions nested in it."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def _app_files() -> list[Path]:
    return [
        p
        for p in ROOT.rglob("*.py")
        if not SKIP_PARTS.intersection(p.relative_to(ROOT).parts[:-1])
        and not p.name.startswith("test_")
        and p.name != "conftest.py"
    ]


def test_no_bypass_write_on_a_tracked_model_without_its_history() -> None:
    tracked = {model.__name__ for model, _ in tracked_models()}
    offending = []
    for path in _app_files():
        rel = path.relative_to(ROOT).as_posix()
        for line, model, method in bypass_writes(path.read_text(), tracked):
            if (rel, model) not in ALLOWED:
                offending.append(f"{rel}:{line} {model}.{method}() writes no history")
    assert not offending, (
        "Use save(), or call audit.history.record_changes() with the rows in the same "
        "function (or add an allow-list entry with its reason):\n" + "\n".join(offending)
    )


def test_the_check_finds_a_bypass_write_and_accepts_its_history() -> None:
    tracked = {"Ticket", "OptOut"}
    direct = "def f():\n    Ticket.objects.filter(pk=1).update(status='closed')\n"
    through_a_variable = (
        "def f():\n    stale = OptOut.objects.filter(note='')\n    stale.update(note='x')\n"
    )
    recorded = (
        "def f():\n    Ticket.objects.filter(pk=1).update(rating=5)\n"
        "    record_changes(Ticket.objects.filter(pk=1))\n"
    )
    untracked = "def f():\n    Nudge.objects.filter(pk=1).update(status='sent')\n"
    assert bypass_writes(direct, tracked) == [(2, "Ticket", "update")]
    assert bypass_writes(through_a_variable, tracked) == [(3, "OptOut", "update")]
    assert bypass_writes(recorded, tracked) == []
    assert bypass_writes(untracked, tracked) == []
    assert bypass_writes("d = {}\nd.update(a=1)\n", tracked) == []


def test_the_allow_list_still_matches_the_code() -> None:
    """An entry whose write is gone is removed, so the list stays the list of reasons."""
    tracked = {model.__name__ for model, _ in tracked_models()}
    for rel, model in ALLOWED:
        found = {m for _, m, _ in bypass_writes((ROOT / rel).read_text(), tracked)}
        assert model in found, f"{rel} no longer bulk-writes {model}: drop the entry"
