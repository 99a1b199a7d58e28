"""Request dependencies (the app's store), the 422 that routes raise themselves and the shape of
FastAPI's own, and the answers every /api/v1 route may give (401, 503)."""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from store import HistoryStore


def get_store(request: Request) -> HistoryStore:
    store: HistoryStore = request.app.state.store
    return store


Store = Annotated[HistoryStore, Depends(get_store)]


def known_query(request: Request) -> None:
    """422 for a query parameter the route does not take: a misspelt one (`from=` for `start=`)
    was ignored, and the default answered as if it were the answer asked for."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    takes = _query_names(dependant)
    unknown = sorted(set(request.query_params) - takes)
    if unknown:
        raise unprocessable(
            f"unknown query parameter(s) {', '.join(unknown)}; this endpoint takes "
            f"{', '.join(sorted(takes)) or 'none'}",
            ("query", unknown[0]),
        )


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route reads, its query models' fields included."""
    names: set[str] = set()
    for param in dependant.query_params:
        model = param.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names |= {field.alias or name for name, field in model.model_fields.items()}
        else:
            names.add(param.alias)
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def unprocessable(message: str, loc: tuple[str, ...] = ("body",)) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors (the documented schema)."""
    return HTTPException(422, detail=[{"loc": list(loc), "msg": message, "type": "value_error"}])


# A query model's own check (start before end, entity with its kind, search with a word) fails the
# whole query: its message starts with the field it is about.
_QUERY_FIELD = re.compile(r"^(?:Value error, )?(start|end|entity_kind|entity|search)\b")


def query_field(message: str) -> str | None:
    """The field a query model's own check is about, by its message; None for the whole query."""
    named = _QUERY_FIELD.match(message)
    return named.group(1) if named else None


def located(errors: Sequence[Any], sent: Collection[str] = ()) -> list[dict[str, Any]]:
    """FastAPI's validation errors, each a query model's own check placed on the field its message
    names (`["query", "start"]`, not `["query"]`) and without the whole query as its `input`; a
    start before its end on `end` where the request sent no start (`sent`: the parameters it did)."""
    shaped = []
    for error in errors:
        if tuple(error.get("loc", ())) == ("query",):
            field = query_field(str(error.get("msg", "")))
            if field == "start" and "start" not in sent and "end" in sent:
                field = "end"  # the default start (a week, or the open alerts' span) came after it
            loc = ["query", field] if field else ["query"]
            error = {"type": error.get("type", "value_error"), "loc": loc, "msg": error.get("msg", "")}
        shaped.append(error)
    return shaped


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 (the documented list of `loc`, `msg`, `type`), shaped by `located`."""
    assert isinstance(exc, RequestValidationError)
    errors = located(exc.errors(), sent=request.query_params.keys())
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


class ErrorDetail(BaseModel):
    """An error's answer: what went wrong and what to do."""

    detail: str


RETRY_AFTER_S = 5
# Every /api/v1 route (health aside) may answer these: on the API router, once.
API_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorDetail,
        "description": "no or wrong token (`Authorization: Bearer <FINPULSE_API_TOKEN>`), or without "
        "api.token set, a client not on loopback",
    },
    503: {
        "model": ErrorDetail,
        "description": "the store (or Kafka, for /sources) is busy or away: try again later",
        "headers": {
            "Retry-After": {
                "description": "seconds to wait before trying again",
                "schema": {"type": "integer"},
            }
        },
    },
}
