"""Secret query values kept out of logs: a news API's key, the dashboard's token."""

from __future__ import annotations

import logging

from finpulse.redact import RedactedArgs, redacted


def test_secret_query_values_are_hidden() -> None:
    assert redacted("GET https://news.example/v2?q=acme&apiKey=S3CRET&page=2") == (
        "GET https://news.example/v2?q=acme&apiKey=***&page=2"
    )
    assert redacted("/?token=abc123#x") == "/?token=***#x"
    assert redacted("/?kind=ticker&entity=ACME") == "/?kind=ticker&entity=ACME"  # nothing secret
    # Marketaux's and EODHD's api_token, OAuth's client_secret, AWS-style access_key; a quote after
    # the URL stays.
    assert redacted("'https://x.example/a?api_token=T1&client_secret=S2&access_key=K3&page=1'") == (
        "'https://x.example/a?api_token=***&client_secret=***&access_key=***&page=1'"
    )


def test_uvicorns_access_line_keeps_the_token_out() -> None:
    # uvicorn's access log: '%s - "%s %s HTTP/%s" %d' with the path and query as one argument.
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/?token=API-SECRET&kind=ticker", "1.1", 200), None,
    )  # fmt: skip
    assert RedactedArgs().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "GET /?token=***&kind=ticker HTTP/1.1" 200'


def test_passwords_in_urls_are_hidden_wherever_the_text_has_them() -> None:
    said = "store postgresql://fp:a/b#c?d@db:5432/x did not answer; feed https://u:p@news.example/rss ok"
    assert redacted(said) == (
        "store postgresql://fp:***@db:5432/x did not answer; feed https://u:***@news.example/rss ok"
    )
    assert redacted("kafka at broker:9092, api http://127.0.0.1:8000/x") == (
        "kafka at broker:9092, api http://127.0.0.1:8000/x"
    )
    # A port is no password, nor is what follows an `@` further on.
    for kept in (
        "https://mastodon.social:443/@finance.rss",
        '["https://a.example:8443/feed","mailto:x@y.z"]',
    ):
        assert redacted(kept) == kept
