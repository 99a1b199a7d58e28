"""The Faust topics of the pipeline, all carrying raw bytes.

Agents decode at the boundary with the schema module, so a bad record is a
`InvalidRecord` we can dead-letter, never a deserialisation crash inside Faust.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from finpulse.settings import TopicSettings
from finpulse.topics import dead_letter_topic


def _raw(app: faust.App, name: str, *, partitions: int | None = None, internal: bool = False) -> TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=internal,
    )


@dataclass(frozen=True)
class PipelineTopics:
    raw: TopicT
    scored: TopicT
    windows: TopicT
    alerts: TopicT
    # Scored items grouped by entity (a JSON array per record), so one worker owns
    # each entity's windows.
    by_entity: TopicT
    names: TopicSettings

    @classmethod
    def declare(cls, app: faust.App, names: TopicSettings) -> PipelineTopics:
        return cls(
            raw=_raw(app, names.raw),
            scored=_raw(app, names.scored),
            windows=_raw(app, names.windows),
            alerts=_raw(app, names.alerts),
            by_entity=_raw(app, f"{app.conf.id}-entity-batches", partitions=names.partitions, internal=True),
            names=names,
        )

    def dead(self, app: faust.App, source: str) -> TopicT:
        return _raw(app, dead_letter_topic(source, self.names))
