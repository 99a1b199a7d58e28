"""The Faust topics of the pipeline, all carrying raw bytes.

Agents decode at the boundary with the schema module, so a bad record is a
`InvalidRecord` we can dead-letter, never a deserialisation crash inside Faust.
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from finpulse.settings import Settings, TopicSettings
from finpulse.topics import TopicSpec, dead_letter_topic, pipeline_topics


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


# The worker's changelogged tables; Faust names their topics "<app id>-<table>-changelog".
WINDOW_SUMS = "window-sums"
COUNTED = "counted-records"
BASELINES = "entity-baselines"
DETECTOR_STATES = "detector-states"
TABLES = (WINDOW_SUMS, COUNTED, BASELINES, DETECTOR_STATES)


def by_entity_topic(app_id: str) -> str:
    return f"{app_id}-entity-batches"


def worker_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic a worker reads, to create before the app starts: on a fresh broker a
    worker that subscribes before Faust has declared its own internal topics ignores
    them ("Ignoring missing topic") and never aggregates or keeps detector state."""
    t, app_id = settings.kafka.topics, settings.stream.app_id
    internal = [TopicSpec(by_entity_topic(app_id), t.partitions, t.replication_factor)]
    internal += [
        TopicSpec(name, t.partitions, t.replication_factor, compact=True) for name in _changelogs(app_id)
    ]
    return [*pipeline_topics(t), *internal]


def copartitioned(settings: Settings) -> list[str]:
    """The topics whose partition count must be the settings': news.raw (the watermark waits for
    each of its partitions), the by-entity and windows topics and the tables' changelogs (Faust
    refuses a table write whose changelog has another count: every record dead-lettered)."""
    t, app_id = settings.kafka.topics, settings.stream.app_id
    return [t.raw, t.windows, by_entity_topic(app_id), *_changelogs(app_id)]


def _changelogs(app_id: str) -> list[str]:
    """The changelog topics of the worker's tables (Faust's names)."""
    return [f"{app_id}-{table}-changelog" for table in TABLES]


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
            by_entity=_raw(app, by_entity_topic(app.conf.id), partitions=names.partitions, internal=True),
            names=names,
        )

    def dead(self, app: faust.App, source: str) -> TopicT:
        return _raw(app, dead_letter_topic(source, self.names))
