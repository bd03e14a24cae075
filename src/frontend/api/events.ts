// A run's live events over Server-Sent Events. EventSource cannot send an Authorization
// header, so the stream is read with fetch and parsed with eventsource-parser; on a dropped
// connection it reconnects with Last-Event-ID, so no event is lost or repeated.
import { EventSourceParserStream } from "eventsource-parser/stream";

import { authHeaders } from "./client";
import { requestApiKey, getApiKey } from "./auth";
import type { EventRead } from "./types";

export type StreamStatus = "connecting" | "live" | "reconnecting" | "ended" | "error";

export interface RunEventHandlers {
  onEvent: (event: EventRead) => void;
  onStatus?: (status: StreamStatus, detail?: string) => void;
}

export interface StreamOptions {
  /** Resume after this event id (the last one already shown). */
  after?: number;
  /** First reconnect delay; doubles up to maxDelayMs. */
  retryDelayMs?: number;
  maxDelayMs?: number;
  fetchImpl?: typeof fetch;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Follows `/api/runs/{runId}/events/stream` until the server ends it (the run has finished
 * and every event was sent) or `signal` aborts. Returns the id of the last event received.
 */
export async function followRunEvents(
  runId: string,
  handlers: RunEventHandlers,
  signal: AbortSignal,
  options: StreamOptions = {},
): Promise<number> {
  const fetchImpl = options.fetchImpl ?? fetch;
  const firstDelay = options.retryDelayMs ?? 1000;
  const maxDelay = options.maxDelayMs ?? 15000;
  let lastId = options.after ?? 0;
  let delay = firstDelay;
  let attempt = 0;

  while (!signal.aborted) {
    handlers.onStatus?.(attempt === 0 ? "connecting" : "reconnecting");
    attempt += 1;
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream", ...authHeaders() };
      if (lastId > 0) headers["Last-Event-ID"] = String(lastId);
      const response = await fetchImpl(`/api/runs/${encodeURIComponent(runId)}/events/stream`, {
        headers,
        signal,
        cache: "no-store",
      });
      if (response.status === 401) {
        requestApiKey(getApiKey());
        handlers.onStatus?.("error", "An API key is needed to follow this run");
        return lastId;
      }
      if (!response.ok || !response.body) {
        // 404 and other refusals will not change by retrying.
        if (response.status >= 400 && response.status < 500) {
          handlers.onStatus?.("error", `The event stream answered ${response.status}`);
          return lastId;
        }
        throw new Error(`status ${response.status}`);
      }
      handlers.onStatus?.("live");
      delay = firstDelay;
      const reader = response.body
        .pipeThrough(new TextDecoderStream())
        .pipeThrough(new EventSourceParserStream())
        .getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!value.data) continue;
        const event = JSON.parse(value.data) as EventRead;
        if (event.id <= lastId) continue; // already shown (a resumed stream never repeats, but be safe)
        lastId = event.id;
        handlers.onEvent(event);
      }
      // The server closes the stream once the run has finished and everything was sent.
      handlers.onStatus?.("ended");
      return lastId;
    } catch (error) {
      if (signal.aborted) break;
      handlers.onStatus?.("reconnecting", String(error));
      await sleep(delay, signal);
      delay = Math.min(delay * 2, maxDelay);
    }
  }
  return lastId;
}
