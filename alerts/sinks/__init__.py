"""Where alerts go: the sink interface (`base`), console and generic-webhook sinks.

Slack lives in `alerts.slack` (SlackNotifier); all of them implement `base.AlertSink`.
"""
