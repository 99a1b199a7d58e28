"""Request dependencies (the app's store) and the 422 that routes raise themselves."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from store import HistoryStore


def get_store(request: Request) -> HistoryStore:
    store: HistoryStore = request.app.state.store
    return store


Store = Annotated[HistoryStore, Depends(get_store)]


def unprocessable(message: str, loc: tuple[str, ...] = ("body",)) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors (the documented schema)."""
    return HTTPException(422, detail=[{"loc": list(loc), "msg": message, "type": "value_error"}])
