// The run's events as they happen, over Server-Sent Events (resumed with Last-Event-ID).
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";

import { followRunEvents, type StreamStatus } from "../api/events";
import type { EventRead } from "../api/types";
import { formatTime } from "../components/format";

/** Keep the page light on very long runs: the newest events are what a person watches. */
const MAX_EVENTS = 2000;

const MAX_TEXT = 240;

const STATUS_TEXT: Record<StreamStatus, string> = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  ended: "Run finished: no more events",
  error: "Not following",
};

function describe(event: EventRead): string {
  const payload = event.payload as Record<string, unknown>;
  const parts: string[] = [];
  if (typeof payload.from === "string" && typeof payload.to === "string") {
    parts.push(`${payload.from} → ${payload.to}`);
  }
  for (const key of ["reason", "message", "model", "outcome", "commit", "error"]) {
    const value = payload[key];
    if (typeof value === "string" && value) parts.push(key === "commit" ? value.slice(0, 10) : value);
  }
  const text = parts.join(" · ");
  // A failure reason can run to paragraphs; the phase and the run show it whole.
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text;
}

export function EventLog({ runId, active }: { runId: string; active: boolean }) {
  const client = useQueryClient();
  const [events, setEvents] = useState<EventRead[]>([]);
  const [status, setStatus] = useState<StreamStatus>("connecting");
  const lastId = useRef(0);

  useEffect(() => {
    const controller = new AbortController();
    let refresh: ReturnType<typeof setTimeout> | null = null;
    const scheduleRefresh = () => {
      // Many events arrive together; refresh the run's view once for the burst.
      if (refresh) return;
      refresh = setTimeout(() => {
        refresh = null;
        void client.invalidateQueries({ queryKey: ["run", runId] });
        void client.invalidateQueries({ queryKey: ["attempts", runId] });
        void client.invalidateQueries({ queryKey: ["approvals", runId] });
      }, 300);
    };
    void followRunEvents(
      runId,
      {
        onEvent: (event) => {
          setEvents((previous) => {
            if (previous.length && (previous[previous.length - 1]?.id ?? 0) >= event.id) return previous;
            const next = [...previous, event];
            return next.length > MAX_EVENTS ? next.slice(next.length - MAX_EVENTS) : next;
          });
          scheduleRefresh();
        },
        onStatus: (next) => setStatus(next),
      },
      controller.signal,
      { after: lastId.current },
    ).then((id) => {
      lastId.current = Math.max(lastId.current, id);
    });
    return () => {
      controller.abort();
      if (refresh) clearTimeout(refresh);
    };
    // `active` restarts the stream when a finished run is retried and runs again.
  }, [runId, active, client]);

  useEffect(() => {
    if (events.length) lastId.current = events[events.length - 1]?.id ?? lastId.current;
  }, [events]);

  return (
    <section className="panel" aria-labelledby="events-title">
      <div className="panel-head">
        <h2 id="events-title">Events</h2>
        <span className={`stream-status stream-${status}`} role="status" aria-live="polite">
          {STATUS_TEXT[status]}
        </span>
      </div>
      {events.length === 0 ? (
        <p className="muted">{status === "live" || status === "connecting" ? "Waiting for events…" : "No events."}</p>
      ) : (
        <ol className="event-log" aria-label="Run events, oldest first" data-testid="event-log">
          {events.map((event) => (
            <li key={event.id} data-event-id={event.id}>
              <time dateTime={event.created_at}>{formatTime(event.created_at)}</time>
              <span className="event-body">
                <code className="event-type">{event.type}</code>
                {event.phase_id ? <span className="event-phase">{event.phase_id}</span> : null}
                <span className="event-text">{describe(event)}</span>
              </span>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
