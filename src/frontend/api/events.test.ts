import { beforeEach, describe, expect, it, vi } from "vitest";

import { deferred, errorResponse, makeEvent, sseFrame, sseResponse } from "../test/fixtures";
import { keyPromptState, resetAuthForTests, setApiKey } from "./auth";
import { followRunEvents, type StreamStatus } from "./events";
import type { EventRead } from "./types";

type FetchImpl = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

const started = makeEvent(1, "run.started");
const phaseStarted = makeEvent(2, "phase.started", { phase_id: "p1" });
const phaseDone = makeEvent(3, "phase.completed", { phase_id: "p1" });
const finished = makeEvent(4, "run.finished");

interface FollowOptions {
  after?: number;
  signal?: AbortSignal;
  onEvent?: (event: EventRead) => void;
  onStatus?: (status: StreamStatus) => void;
}

function follow(fetchImpl: FetchImpl, options: FollowOptions = {}) {
  const events: EventRead[] = [];
  const statuses: StreamStatus[] = [];
  const fetchMock = vi.fn(fetchImpl);
  const done = followRunEvents(
    "run-2024-alpha",
    {
      onEvent: (event) => {
        events.push(event);
        options.onEvent?.(event);
      },
      onStatus: (status) => {
        statuses.push(status);
        options.onStatus?.(status);
      },
    },
    options.signal ?? new AbortController().signal,
    { fetchImpl: fetchMock, retryDelayMs: 1, maxDelayMs: 2, after: options.after },
  );
  return { done, events, statuses, fetchMock };
}

function headersOf(fetchMock: ReturnType<typeof vi.fn<FetchImpl>>, call: number): Headers {
  const init = fetchMock.mock.calls[call]?.[1];
  return new Headers(init?.headers);
}

beforeEach(() => {
  resetAuthForTests();
});

describe("followRunEvents", () => {
  it("delivers the events in order and ends when the server closes the stream", async () => {
    const { done, events, statuses, fetchMock } = follow(async () =>
      sseResponse([started, phaseStarted, phaseDone].map(sseFrame)),
    );

    await expect(done).resolves.toBe(3);

    expect(events).toEqual([started, phaseStarted, phaseDone]);
    expect(statuses).toEqual(["connecting", "live", "ended"]);
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(fetchMock.mock.calls[0]?.[0]).toBe("/api/runs/run-2024-alpha/events/stream");
    const headers = headersOf(fetchMock, 0);
    expect(headers.get("Accept")).toBe("text/event-stream");
    expect(headers.has("Last-Event-ID")).toBe(false);
  });

  it("sends the stored API key", async () => {
    setApiKey("sk-stream");
    const { done, fetchMock } = follow(async () => sseResponse([sseFrame(started)]));

    await done;

    expect(headersOf(fetchMock, 0).get("Authorization")).toBe("Bearer sk-stream");
  });

  it("reconnects after a dropped stream with Last-Event-ID and repeats nothing", async () => {
    const secondDelivered = deferred();
    const responses = [
      // The connection drops right after event 2 was shown.
      sseResponse([started, phaseStarted].map(sseFrame), { dropWhen: secondDelivered.promise }),
      // The server resumes after 2; a repeated event 2 must still not be shown twice.
      sseResponse([phaseStarted, phaseDone, finished].map(sseFrame)),
    ];
    const { done, events, statuses, fetchMock } = follow(
      async () => {
        const next = responses.shift();
        if (!next) throw new Error("too many requests");
        return next;
      },
      { onEvent: (event) => event.id === 2 && secondDelivered.resolve() },
    );

    await expect(done).resolves.toBe(4);

    expect(fetchMock).toHaveBeenCalledTimes(2);
    expect(headersOf(fetchMock, 0).has("Last-Event-ID")).toBe(false);
    expect(headersOf(fetchMock, 1).get("Last-Event-ID")).toBe("2");
    expect(events.map((event) => event.id)).toEqual([1, 2, 3, 4]);
    expect(events).toEqual([started, phaseStarted, phaseDone, finished]);
    expect(statuses).toEqual(["connecting", "live", "reconnecting", "reconnecting", "live", "ended"]);
  });

  it("retries a server error (5xx), then carries on", async () => {
    const responses = [errorResponse(503, "unavailable", "Starting up"), sseResponse([sseFrame(started)])];
    const { done, events, fetchMock } = follow(async () => responses.shift() ?? errorResponse(500, "x", "x"));

    await expect(done).resolves.toBe(1);

    expect(fetchMock).toHaveBeenCalledTimes(2);
    expect(events).toEqual([started]);
  });

  it("resumes after the given id", async () => {
    const { done, events, fetchMock } = follow(async () => sseResponse([phaseDone, finished].map(sseFrame)), {
      after: 2,
    });

    await expect(done).resolves.toBe(4);

    expect(headersOf(fetchMock, 0).get("Last-Event-ID")).toBe("2");
    expect(events.map((event) => event.id)).toEqual([3, 4]);
  });

  it("on 401 asks for a key and stops", async () => {
    const { done, events, statuses, fetchMock } = follow(async () =>
      errorResponse(401, "unauthorized", "API key required"),
    );

    await expect(done).resolves.toBe(0);

    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(events).toEqual([]);
    expect(statuses.at(-1)).toBe("error");
    expect(keyPromptState()).toEqual({ open: true, rejected: false });
  });

  it("on 401 with a key sent, marks that key as refused", async () => {
    setApiKey("revoked");
    const { done } = follow(async () => errorResponse(401, "unauthorized", "Revoked"));

    await done;

    expect(keyPromptState()).toEqual({ open: true, rejected: true });
  });

  it("on 404 stops without retrying", async () => {
    const { done, statuses, fetchMock } = follow(async () => errorResponse(404, "run_not_found", "No such run"));

    await expect(done).resolves.toBe(0);

    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(statuses).toEqual(["connecting", "error"]);
    expect(keyPromptState().open).toBe(false);
  });

  it("stops reconnecting when aborted", async () => {
    const controller = new AbortController();
    const firstDelivered = deferred();
    const { done, events, fetchMock } = follow(
      async () => sseResponse([sseFrame(started)], { dropWhen: firstDelivered.promise }),
      {
        signal: controller.signal,
        onEvent: () => firstDelivered.resolve(),
        // Leaving the page while it waits to reconnect.
        onStatus: (status) => status === "reconnecting" && controller.abort(),
      },
    );

    await expect(done).resolves.toBe(1);

    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(events).toEqual([started]);
  });
});
