"""Running voterpipe unattended: the cron run, its lock and log, alerts, metrics and status."""
