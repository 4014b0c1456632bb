"""Logging, configured once per process: INFO to stderr (cron mails it), and to the rotated log
file the operations lines (one per stage with its counts, the cron run's own lines) and warnings.

Luigi is told not to add its own handler, so no line is printed twice."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

import luigi.configuration

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
OPS_LOGGER = "voterpipe.ops"
_file_handler: logging.Handler | None = None


class _OperationsOnly(logging.Filter):
    """The log file keeps the operations lines and anything at WARNING or above."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name.startswith(OPS_LOGGER)


def configure_logging(level: int = logging.INFO, log_file: Path | None = None) -> None:
    """Root handler on stderr at `level` (once); luigi's own configuration switched off; with
    `log_file`, the operations lines are appended to it (rotated by [cron] size and backups)."""
    root = logging.getLogger()
    if not [h for h in root.handlers if h is not _file_handler]:  # as logging.basicConfig: once
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
        root.setLevel(level)
    # luigi.interface would otherwise add a handler to 'luigi-interface' (at DEBUG without luigi.cfg)
    luigi.configuration.get_config().set("core", "no_configure_logging", "true")
    if log_file is not None:
        attach_log_file(Path(log_file))


def attach_log_file(path: Path) -> logging.Handler:
    """Append the operations lines to `path` (replacing an earlier file handler of this process)."""
    global _file_handler
    from voterpipe.config import cron

    settings = cron()
    root = logging.getLogger()
    if _file_handler is not None:
        root.removeHandler(_file_handler)
        _file_handler.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=settings.log_max_bytes, backupCount=settings.log_backups, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(_OperationsOnly())
    root.addHandler(handler)
    logging.getLogger(OPS_LOGGER).setLevel(logging.INFO)  # its lines reach the file whatever the root level
    _file_handler = handler
    return handler


def detach_log_file() -> None:
    global _file_handler
    if _file_handler is not None:
        logging.getLogger().removeHandler(_file_handler)
        _file_handler.close()
        _file_handler = None


def log_file_path() -> str:
    """Where this process appends its operations lines ('' when it has no log file)."""
    return getattr(_file_handler, "baseFilename", "") if _file_handler is not None else ""
