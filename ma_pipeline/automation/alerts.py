"""Run-failure alerts to a chat webhook (Slack and Discord accept the same small JSON)."""

from typing import ClassVar

import httpx
from pydantic import Field

from ma_pipeline.settings import LaunchSettings


def alert_payload(text: str) -> dict[str, str]:
    """Slack incoming webhooks read ``text``, Discord webhooks read ``content`` (2,000 characters
    at most); each ignores the other's key."""
    return {"text": text, "content": text[:2000]}


def failure_message(
    job: str, run_id: str, failed_steps: list[str], error: str | None, ui_url: str
) -> str:
    steps = ", ".join(failed_steps) or "none (the run failed outside a step)"
    lines = [
        f":rotating_light: Dagster run failed: job `{job}`, run `{run_id}`",
        f"Failed step(s): {steps}",
    ]
    if error:
        lines.append(f"Error: {error.strip().splitlines()[0][:500]}")
    lines.append(f"{ui_url.rstrip('/')}/runs/{run_id}")
    return "\n".join(lines)


class AlertWebhook(LaunchSettings):
    """Where run-failure alerts go: MA_ALERT_WEBHOOK_URL (a Slack or Discord incoming webhook);
    unset, alerts are only logged. MA_DAGSTER_UI_URL builds the link to the run."""

    from_settings: ClassVar[dict[str, str]] = {
        "url": "MA_ALERT_WEBHOOK_URL",
        "ui_url": "MA_DAGSTER_UI_URL",
    }

    url: str | None = Field(
        default=None, repr=False, description="Webhook URL (a secret: it embeds a token)"
    )
    ui_url: str | None = Field(
        default="http://localhost:3000", description="The Dagster UI's base URL"
    )
    timeout_s: float = Field(default=10.0, description="Seconds allowed for the POST")

    def send(self, text: str) -> str | None:
        """POST ``text``; returns None when delivered, else why it was not."""
        if not self.url:
            return "MA_ALERT_WEBHOOK_URL is not set"
        try:
            response = httpx.post(self.url, json=alert_payload(text), timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            return f"webhook unreachable: {type(exc).__name__}"
        if response.is_error:
            return f"webhook answered HTTP {response.status_code}"
        return None
