"""Ingestion: feeds, JSON news APIs and replay files -> NewsItem -> Kafka `news.raw`.

    sources.py    the sources file (TOML): FeedSource, ApiSource, ReplaySource
    urls.py       which URLs may be fetched (http(s), public addresses)
    fetch.py      HttpFetcher: timeouts, size cap, redirects, conditional GET, retries
    limits.py     HostLimiter: per-host concurrency and spacing
    rss.py        RssSource, parse_feed (feedparser over fetched bytes)
    api.py        JsonApiSource (field map, auth from env, cursor pagination)
    normalize.py  RawEntry -> NewsItem (HTML stripped, canonical URL, UTC, tickers, story id)
    dedup.py      Deduplicator: exact URL/GUID and MinHash-LSH near duplicates
    state.py      SourceState / StateStore: validators, seen ids, backoff, cursor
    producer.py   NewsProducer: idempotent aiokafka producer, dead letters, source statuses
    ingestor.py   Ingestor: poll -> normalise -> dedup -> publish -> save state -> status
    health.py     each source's health from the statuses on Kafka (`finpulse status`, the API)
    scheduler.py  APScheduler jobs (`finpulse ingest`)
    replay.py     publish_replay / publish_replay_async (`finpulse ingest replay`)
    samples.py    run_sample_ingest: the demo's ingest from a loopback feed server
    bench.py      `finpulse ingest bench`

Nothing is imported here, so `ingest.cli` stays light.
"""
