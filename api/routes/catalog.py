"""The catalog: what a rating can name. No authentication."""

from fastapi import APIRouter, Response

from models.catalog import Catalog, catalog_document

router = APIRouter(prefix="/v1", tags=["catalog"])

# It never changes while the process runs: serialised once.
_CATALOG_JSON = catalog_document().model_dump_json()


@router.get("/catalog", response_model=Catalog, summary="Regions, sides, metrics and tools")
async def read_catalog() -> Response:  # no I/O: no worker thread
    return Response(_CATALOG_JSON, media_type="application/json")
