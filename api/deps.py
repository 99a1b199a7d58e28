"""Request dependencies: the app's store."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from store import DuckDBStore


def get_store(request: Request) -> DuckDBStore:
    store: DuckDBStore = request.app.state.store
    return store


Store = Annotated[DuckDBStore, Depends(get_store)]
