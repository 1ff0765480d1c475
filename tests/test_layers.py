"""Imports flow one way (see the house style): `models` imports nothing from `api`, and
`api.analytics` and `api.reports` know no HTTP; routes write no queries of their own."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTTP_PACKAGES = ("fastapi", "starlette", "httpx")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("path", _modules("models"), ids=str)
def test_models_import_nothing_from_api(path: Path) -> None:
    assert not {name for name in _imported(path) if _top(name) == "api"}


@pytest.mark.parametrize("path", _modules("api/analytics") + _modules("api/reports"), ids=str)
def test_analytics_and_reports_know_no_http(path: Path) -> None:
    assert not {name for name in _imported(path) if _top(name) in HTTP_PACKAGES}


@pytest.mark.parametrize("path", _modules("api/reports"), ids=str)
def test_reports_read_through_analytics_and_write_no_sql(path: Path) -> None:
    assert not {name for name in _imported(path) if _top(name) in ("sqlalchemy", "sqlmodel")}


@pytest.mark.parametrize("path", _modules("api/routes"), ids=str)
def test_routes_stay_thin(path: Path) -> None:
    source = path.read_text()
    for forbidden in ("select(", ".commit(", "HTTPException"):
        assert forbidden not in source, f"{path.name}: {forbidden}"
