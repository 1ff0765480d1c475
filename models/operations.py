"""The bodies of the operations endpoints (liveness and readiness)."""

from typing import Literal

from models.base import ResponseModel


class Liveness(ResponseModel):
    status: Literal["ok"] = "ok"


class Readiness(ResponseModel):
    """The database answered. When it does not, /readyz is a 503 problem instead."""

    status: Literal["ready"] = "ready"
