"""The catalog: what a rating can name. No authentication."""

from typing import Any

from fastapi import APIRouter

from models.catalog import catalog_document

router = APIRouter(prefix="/v1", tags=["catalog"])

_CATALOG = catalog_document()


@router.get("/catalog", summary="Regions, sides, metrics and tools")
def read_catalog() -> dict[str, Any]:
    return _CATALOG
