"""A source's saved state against the source as configured now (ingestor.at_address)."""

from __future__ import annotations

from ingest.ingestor import at_address
from ingest.sources import ApiFields, ApiPagination, ApiSource
from ingest.state import SourceState

SOURCE = ApiSource(
    name="news-api",
    url="https://api.example.com/v1/news",
    params={"q": "acme"},
    items_path="data",
    pagination=ApiPagination(cursor_path="meta.next", mode="resume"),
)
# What states saved for SOURCE hold: its address (URL and query) as every release has saved it, and
# its field map's digest. Either changing drops every saved cursor and ETag once.
ADDRESS, FIELD_MAP = "20588829eb8d47ae", "1572557a0f9bda8f"


def test_a_state_saved_before_field_maps_were_kept_keeps_its_cursor_and_etag() -> None:
    saved = SourceState(source=SOURCE.name, address=ADDRESS, cursor="c-123", etag='"e1"')
    upgraded = at_address(saved, SOURCE)
    assert (upgraded.cursor, upgraded.etag) == ("c-123", '"e1"')
    assert (upgraded.address, upgraded.field_map) == (ADDRESS, FIELD_MAP)
    # Recorded from then on: a fixed map reads again.
    fixed = at_address(upgraded, SOURCE.model_copy(update={"fields": ApiFields(id="id", title="headline")}))
    assert (fixed.cursor, fixed.etag) == (None, None)
