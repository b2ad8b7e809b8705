"""The layers import only what they may: the core no platform SDK, the local adapter only the core."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "concierge": {"discord", "slack_bolt", "slack_sdk", "apscheduler", "adapters", "scheduling", "aiohttp"},
    "adapters/local": {"discord", "slack_bolt", "slack_sdk", "apscheduler", "scheduling", "aiohttp"},
    "scheduling": {"discord", "slack_bolt", "slack_sdk", "adapters"},
    "monitoring": {"discord", "slack_bolt", "slack_sdk", "adapters", "scheduling", "sqlalchemy", "sqlmodel"},
}


# Adapters translate and render: the records and SQL stay in the core, behind its services.
FORBIDDEN_IN_ADAPTERS = {"sqlmodel", "sqlalchemy", "concierge.records"}


def imported_modules(path: Path, *, dotted: bool = False) -> set[str]:
    """The modules a file imports: top-level names, or (`dotted`) the full dotted names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name if dotted else alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module if dotted else node.module.split(".")[0])
            if dotted:  # `from concierge import records`
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer):
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, f"no python files under {layer}"
    offending = {
        str(path.relative_to(ROOT)): sorted(imported_modules(path) & FORBIDDEN[layer]) for path in files
    }
    offending = {path: names for path, names in offending.items() if names}
    assert offending == {}


def test_adapters_import_no_records_and_no_sql():
    files = sorted((ROOT / "adapters").rglob("*.py"))
    offending = {}
    for path in files:
        names = {name for name in imported_modules(path, dotted=True)
                 if name in FORBIDDEN_IN_ADAPTERS or name.split(".")[0] in {"sqlmodel", "sqlalchemy"}}
        if names:
            offending[str(path.relative_to(ROOT))] = sorted(names)
    assert offending == {}


def test_the_check_sees_a_forbidden_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom slack_bolt.async_app import AsyncApp\nimport discord.ui\n")
    assert {"slack_bolt", "discord"} <= imported_modules(sample)
    sample.write_text("from concierge.records import Member\nfrom concierge import records\n")
    assert {"concierge.records"} <= imported_modules(sample, dotted=True)


def test_the_outbox_knows_no_digest():
    """Digests register their delivery policy through bootstrap; the outbox imports nothing of them."""
    files = sorted((ROOT / "concierge" / "outbox").rglob("*.py"))
    assert files
    offending = {str(path.relative_to(ROOT)): sorted(name for name in imported_modules(path, dotted=True)
                                                     if name.startswith("concierge.digests"))
                 for path in files}
    assert {path: names for path, names in offending.items() if names} == {}


# Ways to write an outbox row: a Core insert into its table, raw SQL, an ORM record added.
OUTBOX_WRITES = re.compile(r"insert\(\s*(ITEMS|OutboxItem|table_of\(OutboxItem\))|INSERT INTO \{?(ITEMS|outboxitem)"
                           r"|(?<!class )OutboxItem\(", re.IGNORECASE)


def test_one_module_writes_outbox_rows():
    writers = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "concierge").rglob("*.py")
                     if OUTBOX_WRITES.search(path.read_text()))
    assert writers == ["concierge/outbox/queue.py"]
