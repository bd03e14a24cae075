"""Artifacts of a run under ``<runs_dir>/<run_id>/``: per-attempt prompts, replies, diffs and
test logs, and a Markdown run summary. They mirror what the database holds, for people to read;
every text written goes through ``redact`` first."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from autopack.settings import Settings

REDACTED = "[REDACTED]"
# Shapes of credentials worth hiding even when Autopack was not told about them.
_KEY_SHAPES = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{8,}|sk-[A-Za-z0-9_\-]{16,}|AKIA[0-9A-Z]{16}|"
    r"(?i:bearer)\s+[A-Za-z0-9._\-]{16,})"
)


def secret_values(settings: Settings) -> list[str]:
    """The values of every secret setting (to be redacted wherever text leaves the process)."""
    values: list[str] = []
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra
        if not (isinstance(extra, dict) and extra.get("secret")):
            continue
        value = getattr(settings, name)
        if value is None:
            continue
        secret = value.get_secret_value()
        if secret:
            values.append(secret)
            password = _url_password(secret)
            if password:
                values.append(password)
    return values


def _url_password(url: str) -> str | None:
    match = re.match(r"^[a-z0-9+]+://[^:/@]+:([^@]+)@", url)
    return match.group(1) if match else None


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _KEY_SHAPES.sub(REDACTED, text)


class RunArtifacts:
    """Files of one run. Writes are best effort for people: the database is the record."""

    def __init__(self, runs_dir: Path, run_id: str, secrets: Iterable[str]) -> None:
        # Absolute: git and test commands run with other working directories.
        self.root = runs_dir.resolve() / run_id
        self._secrets = list(secrets)

    @property
    def workspace_dir(self) -> Path:
        return self.root / "workspace"

    @property
    def baseline_dir(self) -> Path:
        return self.root / "baseline"

    def attempt_dir(self, phase_id: str, attempt: int) -> Path:
        return self.root / "phases" / phase_id / f"attempt-{attempt}"

    def redact(self, text: str) -> str:
        """``text`` as every artifact of this run is written: with the secrets redacted."""
        return redact(text, self._secrets)

    def write(self, path: Path, text: str) -> Path:
        self._write_redacted(path, self.redact(text))
        return path

    def write_attempt(self, phase_id: str, attempt: int, name: str, text: str) -> Path:
        return self.write(self.attempt_dir(phase_id, attempt) / name, text)

    def record_attempt(self, phase_id: str, attempt: int, name: str, text: str) -> str:
        """Write an attempt's artifact and return the redacted text written, for the database
        to keep the same (never the unredacted text)."""
        redacted = self.redact(text)
        self._write_redacted(self.attempt_dir(phase_id, attempt) / name, redacted)
        return redacted

    @staticmethod
    def _write_redacted(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def write_summary(self, markdown: str) -> Path:
        return self.write(self.root / "summary.md", markdown)
