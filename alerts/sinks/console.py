"""ConsoleSink: notifications printed to the terminal (demo, local runs, debugging)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from alerts.digest import Digest
from alerts.links import FeedbackLinks
from alerts.render import digest_alert_line, digest_entity_line, digest_summary, summary
from alerts.sinks.base import AlertSink, Notification


class ConsoleSink(AlertSink):
    """Prints one line per alert, plus its top headlines, with rich (markup escaped)."""

    name = "console"

    def __init__(self, console: Console | None = None, links: FeedbackLinks | None = None) -> None:
        self._console = console or Console(highlight=False)
        self._links = links

    async def send(self, notification: Notification) -> str | None:
        colour = "red" if notification.state == "fired" else "green"
        links, state = self._links, str(notification.state)
        if notification.test_note is not None:
            self._console.print(f"[bold]test[/bold] {escape(notification.test_note)}")
            colour, links, state = "yellow", None, "example"  # not "fired": a log read later, uncoloured
        for event in notification.events:
            line = summary(event, mrkdwn=False)
            self._console.print(f"[{colour}]{state}[/{colour}] {escape(line)}")
            if notification.state == "fired":
                sub = event.subscription_id
                name = notification.subscription_names.get(sub)
                whose = f"{name} ({sub})" if name and name != sub else sub
                self._console.print(f"    subscription {escape(whose)}, alert {escape(event.alert_id)}")
                for h in event.top_headlines:
                    self._console.print(f"    - {escape(h.title)} {escape(h.url or '')}")
                if links is not None:
                    urls = links.urls(event)
                    line = (
                        f"    chart: {escape(urls['chart'])}\n"
                        f"    dashboard: {escape(urls['dashboard'])}\n"
                        f"    mute {escape(f'{event.entity_kind} {event.entity}')}: {escape(urls['mute'])}\n"
                        f"    real event? yes: {escape(urls['tp'])}  no: {escape(urls['fp'])}"
                    )
                    self._console.print(line, soft_wrap=True)
        return None

    async def send_digest(self, digest: Digest) -> str | None:
        self._console.print(f"[bold]digest[/bold] {escape(digest.title)}: {escape(digest_summary(digest))}")
        for e in digest.entities:
            self._console.print(f"    {escape(digest_entity_line(e, mrkdwn=False))}")
        for a in (*digest.alerts, *digest.open_before):
            self._console.print(f"    alert {escape(digest_alert_line(a, digest, mrkdwn=False))}")
        for h in digest.headlines:
            self._console.print(f"    - {escape(h.title)} ({h.sentiment_score:+.2f})")
        return None
