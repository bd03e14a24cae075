"""House rules of ARCHITECTURE §3 that a grep can check."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "autopack"


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_only_settings_reads_the_environment() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in _sources()
        if path.name != "settings.py"
        and re.search(r"os\.environ|os\.getenv|getenv\(", path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], f"only settings.py may read the environment: {offenders}"


def test_nothing_creates_tables_outside_migrations() -> None:
    offenders = [
        str(path.relative_to(SRC))
        for path in _sources()
        if "create_all(" in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_no_engine_or_settings_at_module_level() -> None:
    """A module-level `Settings()` or `create_db_engine(` would read the environment or open a
    database at import time (only autopack.main builds its app, which reads nothing itself)."""
    pattern = re.compile(r"^\w+\s*(:[^=]+)?=\s*.*\b(Settings\(|create_db_engine\()", re.M)
    offenders = [
        str(path.relative_to(SRC))
        for path in _sources()
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_routers_do_not_touch_other_domains_models() -> None:
    """A domain's router calls services; it never queries another domain's tables."""
    offenders = []
    for router in SRC.glob("*/router.py"):
        domain = router.parent.name
        for match in re.finditer(r"from autopack\.(\w+)\.models import", router.read_text()):
            other = match.group(1)
            defines_tables = "__tablename__" in (SRC / other / "models.py").read_text()
            if other != domain and defines_tables:
                offenders.append(f"{domain}/router.py imports {match.group(1)}.models")
    assert offenders == []
