"""Request dependencies (the app's store) and the 422 that routes raise themselves."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
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
