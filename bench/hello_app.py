"""The reference: a bare Starlette endpoint returning a small JSON, served by the same uvicorn."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(_request):  # type: ignore[no-untyped-def]
    return JSONResponse({"hello": "world"})


app = Starlette(routes=[Route("/hello", hello)])
