// Shared test data and fetch helpers. Every fixture is typed with the generated schema types
// (via api/types.ts), so a backend change that alters a shape breaks these at compile time.
import { vi, type Mock } from "vitest";

import type { ErrorEnvelope, EventRead, ProjectRead, RunDetail, RunSummary } from "../api/types";

// ---------------------------------------------------------------------------------------------
// Fixtures

export const runSummary: RunSummary = {
  run_id: "run-2024-alpha",
  goal: "Add type hints to the greeting module",
  project: "demo",
  state: "RUNNING",
  safety_profile: "normal",
  phases_complete: 2,
  phases_total: 5,
  created_at: "2024-05-01T10:00:00Z",
  started_at: "2024-05-01T10:00:05Z",
  finished_at: null,
  failure_reason: null,
  budget: {
    tokens_used: 1234,
    token_cap: 5000,
    cost_usd: "0.0042",
    cost_cap_usd: "1.5",
    max_duration_minutes: 60,
    max_minor_issues_total: null,
    max_phases: null,
  },
};

export function makeRunSummary(overrides: Partial<RunSummary> = {}): RunSummary {
  return { ...runSummary, ...overrides };
}

export const runDetail: RunDetail = {
  run_id: runSummary.run_id,
  goal: runSummary.goal,
  project: runSummary.project,
  state: "RUNNING",
  safety_profile: "normal",
  promotable: false,
  phases_complete: 1,
  phases_total: 2,
  created_at: runSummary.created_at,
  started_at: runSummary.started_at,
  finished_at: null,
  failure_reason: null,
  budget: runSummary.budget,
  base_commit: "0123456789abcdef0123456789abcdef01234567",
  head_commit: null,
  integration_branch: "autopack/run-2024-alpha",
  ci_runs_used: 1,
  major_issues_count: 0,
  minor_issues_count: 1,
  run_scope: "repo",
  tiers: [
    {
      tier_id: "t1",
      tier_index: 0,
      name: "Foundations",
      description: "Type the greeting module",
      state: "IN_PROGRESS",
      cleanliness: "clean",
      cost_usd: "0.0042",
      tokens_used: 1234,
      phases: [
        {
          phase_id: "p1",
          phase_index: 0,
          tier_id: "t1",
          name: "Add type hints",
          description: "Annotate greet()",
          state: "COMPLETE",
          complexity: "low",
          task_category: "refactor",
          builder_mode: null,
          quality_level: null,
          attempts_count: 1,
          max_attempts: 3,
          commit_sha: "fedcba9876543210fedcba9876543210fedcba98",
          cost_usd: "0.0030",
          tokens_used: 900,
          failure_reason: null,
          scope: { paths: ["app.py"] },
          started_at: "2024-05-01T10:00:05Z",
          finished_at: "2024-05-01T10:01:05Z",
        },
        {
          phase_id: "p2",
          phase_index: 1,
          tier_id: "t1",
          name: "Add a test",
          description: "Cover greet()",
          state: "EXECUTING",
          complexity: "low",
          task_category: "tests",
          builder_mode: null,
          quality_level: null,
          attempts_count: 1,
          max_attempts: 3,
          commit_sha: null,
          cost_usd: "0.0012",
          tokens_used: 334,
          failure_reason: null,
          scope: {},
          started_at: "2024-05-01T10:01:06Z",
          finished_at: null,
        },
      ],
    },
  ],
};

export function makeEvent(id: number, type: string, overrides: Partial<EventRead> = {}): EventRead {
  return {
    id,
    type,
    run_id: runSummary.run_id,
    phase_id: null,
    payload: { n: id },
    created_at: `2024-05-01T10:00:${String(id).padStart(2, "0")}Z`,
    ...overrides,
  };
}

export const eventRead: EventRead = makeEvent(1, "run.started");

export const projectRead: ProjectRead = {
  name: "demo",
  repo: "git@example.com:acme/demo.git",
  default_branch: "main",
  default_test_cmd: "pytest -q",
  protected_paths: [".github/"],
  created_at: "2024-04-01T09:00:00Z",
};

export const otherProject: ProjectRead = {
  ...projectRead,
  name: "website",
  repo: null,
  default_test_cmd: null,
  protected_paths: [],
};

// ---------------------------------------------------------------------------------------------
// Responses

export function jsonResponse(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

export function errorEnvelope(code: string, message: string, details?: unknown): ErrorEnvelope {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

export function errorResponse(status: number, code: string, message: string, details?: unknown): Response {
  return jsonResponse(errorEnvelope(code, message, details), status);
}

/** One SSE frame as the server writes it for an event. */
export function sseFrame(event: EventRead): string {
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * A `text/event-stream` response whose body sends `frames` one chunk at a time, then closes
 * normally or, with `dropWhen`, errors (a dropped connection) once that promise settles. Erroring
 * a stream discards what the reader has not taken yet, so a test that wants the frames seen
 * before the drop resolves `dropWhen` from its event handler.
 */
export function sseResponse(frames: string[], options: { dropWhen?: Promise<unknown> } = {}): Response {
  const encoder = new TextEncoder();
  const queue = [...frames];
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const frame = queue.shift();
      if (frame !== undefined) {
        controller.enqueue(encoder.encode(frame));
        return;
      }
      if (options.dropWhen) {
        await options.dropWhen;
        controller.error(new TypeError("network error: connection reset"));
      } else {
        controller.close();
      }
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

/** A promise and the function that resolves it. */
export function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

// ---------------------------------------------------------------------------------------------
// fetch

export type FetchMock = Mock<(request: Request) => Promise<Response>>;

/**
 * Replaces the global fetch with a mock that sees one `Request` per call, and makes `Request`
 * resolve relative URLs against the page (as a browser does; Node's does not).
 *
 * openapi-fetch reads `globalThis.fetch` and `globalThis.Request` once, when `api` is created
 * (client.ts's import), so this must run before that import: call it from `vi.hoisted`:
 *
 *     const { fetchMock } = await vi.hoisted(async () => {
 *       const { installFetchMock } = await import("../test/fixtures");
 *       return { fetchMock: installFetchMock() };
 *     });
 */
export function installFetchMock(): FetchMock {
  const NodeRequest = globalThis.Request;
  class PageRequest extends NodeRequest {
    constructor(input: RequestInfo | URL, init?: RequestInit) {
      super(typeof input === "string" ? new URL(input, window.location.href) : input, init);
    }
  }
  globalThis.Request = PageRequest;
  const fetchMock: FetchMock = vi.fn();
  globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) =>
    fetchMock(input instanceof Request && init === undefined ? input : new Request(input, init));
  return fetchMock;
}

export type Handler = (request: Request, url: URL) => Response | Promise<Response>;

/**
 * A fetch implementation answering by `"METHOD /path"` (no query string). A request nothing
 * answers gets a 500 envelope naming it, which shows up in the page under test.
 */
export function routes(table: Record<string, Handler>): (request: Request) => Promise<Response> {
  return async (request) => {
    const url = new URL(request.url);
    const handler = table[`${request.method} ${url.pathname}`];
    if (!handler) return errorResponse(500, "unmocked", `No mock for ${request.method} ${url.pathname}`);
    return handler(request, url);
  };
}

/** The requests `fetchMock` saw for `METHOD /path`, in order. */
export function requestsTo(fetchMock: FetchMock, method: string, pathname: string): Request[] {
  return fetchMock.mock.calls
    .map(([request]) => request)
    .filter((request) => request.method === method && new URL(request.url).pathname === pathname);
}
