"""Notices to a webhook and/or by email ([alerts] in luigi.cfg; off while neither is set): a
task failed, a quality gate failed, a snapshot finished, a stage ran past its time limit.

A notice names tasks, gates, thresholds and counts; it never carries a voter's data."""

from __future__ import annotations

import json
import logging
import smtplib
import socket
import time
import urllib.request
from datetime import datetime, timezone
from email.message import EmailMessage

log = logging.getLogger("voterpipe.ops.alerts")

TASK_FAILED = "task_failed"
QUALITY_GATE_FAILED = "quality_gate_failed"
SNAPSHOT_FINISHED = "snapshot_finished"
TASK_OVERTIME = "task_overtime"
ERROR_TEXT_LIMIT = 300  # the error's last line, cut: enough to act on, little room for data


def settings():
    from voterpipe.config import alerts

    return alerts()


def enabled() -> bool:
    config = settings()
    return bool(config.webhook_url or config.email_to)


def notice(event: str, text: str, task=None, **fields) -> dict:
    """The payload every destination receives."""
    body = {"source": "voterpipe", "event": event, "host": socket.gethostname(),
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "text": text}
    if task is not None:
        body.update(task=task.task_family, task_id=task.task_id,
                    state=getattr(task, "state", None), snapshot=str(getattr(task, "snapshot", "")) or None)
    body.update(fields)
    return body


def last_line(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    line = lines[-1] if lines else type(error).__name__
    return line[:ERROR_TEXT_LIMIT]


def send(body: dict) -> list[str]:
    """Deliver to every configured destination; return those that took it. Never raises: an
    alert that cannot be delivered is logged, the run goes on."""
    config = settings()
    delivered = []
    if config.webhook_url:
        if _attempt(lambda: post_webhook(config.webhook_url, body, config.timeout_seconds), "webhook", body):
            delivered.append("webhook")
    if config.email_to:
        if _attempt(lambda: send_email(config, body), "email", body):
            delivered.append("email")
    return delivered


def _attempt(deliver, destination: str, body: dict, tries: int = 2) -> bool:
    for attempt in range(1, tries + 1):
        try:
            deliver()
            return True
        except (OSError, smtplib.SMTPException) as exc:
            if attempt == tries:
                log.warning("alert %s not delivered by %s: %s", body["event"], destination, type(exc).__name__)
            else:
                time.sleep(0.5)
    return False


def post_webhook(url: str, body: dict, timeout: float) -> None:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


def send_email(config, body: dict) -> None:
    message = EmailMessage()
    where = " ".join(str(body[k]) for k in ("state", "snapshot") if body.get(k))
    message["Subject"] = f"[voterpipe] {body['event']} {body.get('task', '')} {where}".strip()
    message["From"] = config.email_from
    message["To"] = config.email_to
    message.set_content(body["text"] + "\n\n" + json.dumps(body, indent=2, sort_keys=True))
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=config.timeout_seconds) as smtp:
        smtp.send_message(message)


def time_limit_seconds(task_family: str) -> float:
    """[alerts] time_limits for this task, else time_limit_minutes; 0 = no limit."""
    config = settings()
    for item in str(config.time_limits).split(","):
        name, _, minutes = item.partition("=")
        if name.strip() == task_family and minutes.strip():
            return 60.0 * float(minutes)
    return 60.0 * float(config.time_limit_minutes)
