"""Dense embeddings from an OpenAI-compatible server (``POST {base}/embeddings``): OpenAI,
Ollama, vLLM, llama.cpp, text-embeddings-inference. There is no local fallback that invents
vectors: without an embeddings server, memory is lexical only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import httpx

from autopack.errors import ConfigurationError, UpstreamError
from autopack.settings import Settings

BATCH_SIZE = 64
# Longer texts are cut before embedding (most embedding models take about 8k tokens at most).
MAX_EMBED_CHARS = 8_000


class Embedder(Protocol):
    """Turns texts into dense vectors; ``name`` says which model (shown in the stats)."""

    name: str

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class OpenAICompatibleEmbedder:
    """The OpenAI embeddings wire format: ``{"model", "input": [...]}`` in, ``data[i].embedding``
    out (ordered by ``data[i].index`` when given)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.name = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout, connect=connect_timeout)
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICompatibleEmbedder | None:
        """The configured embedder, or None when no embeddings server is set."""
        if not settings.embeddings_base_url:
            return None
        if not settings.embeddings_model:
            raise ConfigurationError(
                "AUTOPACK_EMBEDDINGS_BASE_URL is set but AUTOPACK_EMBEDDINGS_MODEL is not"
            )
        key = settings.embeddings_api_key
        return cls(
            settings.embeddings_base_url,
            settings.embeddings_model,
            key.get_secret_value() if key else None,
            connect_timeout=settings.llm_connect_timeout_seconds,
        )

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH_SIZE):
            batch = [text[:MAX_EMBED_CHARS] or " " for text in texts[start : start + BATCH_SIZE]]
            vectors += self._embed_batch(batch)
        return vectors

    def _embed_batch(self, batch: list[str]) -> list[list[float]]:
        url = f"{self.base_url}/embeddings"
        try:
            response = self._client.post(url, json={"model": self.name, "input": batch})
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"the embeddings server at {self.base_url} cannot be reached: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if response.status_code != 200:
            raise UpstreamError(
                f"the embeddings server at {self.base_url} answered {response.status_code}: "
                f"{response.text[:300]}"
            )
        try:
            data = response.json()["data"]
            ordered = sorted(data, key=lambda item: item.get("index", 0)) if data else []
            vectors = [[float(x) for x in item["embedding"]] for item in ordered]
        except (ValueError, KeyError, TypeError) as exc:
            raise UpstreamError(
                f"the embeddings server at {self.base_url} gave a reply that is not in the "
                f"OpenAI embeddings format: {type(exc).__name__}: {exc}"
            ) from exc
        if len(vectors) != len(batch):
            raise UpstreamError(
                f"the embeddings server returned {len(vectors)} vectors for {len(batch)} texts"
            )
        return vectors

    def close(self) -> None:
        self._client.close()
