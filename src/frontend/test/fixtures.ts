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

// ---------------------------------------------------------------------------------------------
// More fixtures: attempts, approvals, usage, promotion and a failed run. (A second type import:
// imports are hoisted, and the lines above stay as they were.)

import type { ApprovalRead, AttemptRead, PhaseRead, UsagePoint, UsageSummary } from "../api/types";
import type { components } from "../api/schema";

export type ApprovalsPage = components["schemas"]["Page_ApprovalRead_"];
export type PromotionRead = components["schemas"]["PromotionRead"];
export type UsageRow = components["schemas"]["UsageRow"];

/** A diff of one file with one removed and two added lines. */
export const attemptDiff = `diff --git a/greeting.py b/greeting.py
--- a/greeting.py
+++ b/greeting.py
@@ -1,2 +1,3 @@
-def greet(name):
+def greet(name: str) -> str:
+    """Say hello."""
     return f"Hello, {name}!"
`;

export function makeAttempt(number: number, overrides: Partial<AttemptRead> = {}): AttemptRead {
  return {
    number,
    outcome: "success",
    model: "claude-sonnet-4",
    prompt_tokens: 1200,
    completion_tokens: 340,
    cost_usd: "0.0150",
    duration_ms: 4200,
    diff: attemptDiff,
    edits: [{ path: "greeting.py", deleted: false }],
    failure_reason: null,
    failure_signature: null,
    feedback: null,
    test_output: "1 passed in 0.02s",
    test_result: null,
    governance_verdict: null,
    auditor_verdict: null,
    started_at: `2024-05-01T10:0${number}:00Z`,
    finished_at: `2024-05-01T10:0${number}:04Z`,
    ...overrides,
  };
}

/** Two attempts of phase p1, oldest first (as the API lists them): a failure, then a success. */
export const phaseAttempts: AttemptRead[] = [
  makeAttempt(1, {
    outcome: "tests_failed",
    model: "claude-haiku-4",
    cost_usd: "0.0040",
    diff: `diff --git a/greeting.py b/greeting.py
--- a/greeting.py
+++ b/greeting.py
@@ -1 +1 @@
-def greet(name):
+def greet(name) -> int:
`,
    failure_reason: "tests failed: test_greet expected str, got int",
    failure_signature: "test_greet:TypeError",
    test_output: "FAILED tests/test_greeting.py::test_greet - TypeError: expected str\n1 failed in 0.03s",
    test_result: { passed: 0, failed: 1 },
    governance_verdict: { decision: "allow", checked_paths: ["greeting.py"] },
  }),
  makeAttempt(2, {
    outcome: "success",
    auditor_verdict: { approved: true, notes: "Types match the docstring" },
  }),
];

export const pendingApproval: ApprovalRead = {
  id: 7,
  run_id: runSummary.run_id,
  phase_id: "p2",
  kind: "protected_path",
  status: "pending",
  reason: null,
  decided_at: null,
  decided_by: null,
  created_at: "2024-05-01T10:02:00Z",
  expires_at: null,
  subject: {
    why: "The change edits a protected path: .github/",
    paths: [".github/workflows/ci.yml"],
    diff: `diff --git a/.github/workflows/ci.yml b/.github/workflows/ci.yml
--- a/.github/workflows/ci.yml
+++ b/.github/workflows/ci.yml
@@ -1,1 +1,2 @@
 name: ci
+on: [push, pull_request]
`,
  },
};

export function approvalsPage(items: ApprovalRead[]): ApprovalsPage {
  return { items, total: items.length, limit: 50, offset: 0 };
}

export const promotionRead: PromotionRead = {
  run_id: runSummary.run_id,
  branch: "main",
  commit: "abcdef0123456789abcdef0123456789abcdef01",
};

export function makeUsageRow(model: string, role: UsageRow["role"], overrides: Partial<UsageRow> = {}): UsageRow {
  return {
    model,
    role,
    provider: model.startsWith("gpt") ? "openai" : "anthropic",
    calls: 10,
    input_tokens: 1000,
    output_tokens: 200,
    cache_read_tokens: 0,
    cache_write_tokens: 0,
    cost_usd: "0.5",
    ...overrides,
  };
}

export const usageSummary: UsageSummary = {
  calls: 1234,
  input_tokens: 1_000_000,
  output_tokens: 234_567,
  total_tokens: 1_234_567,
  cache_read_tokens: 50_000,
  cache_write_tokens: 1_000,
  cost_usd: "12.5",
  by_model_role: [
    makeUsageRow("claude-sonnet-4", "builder", { calls: 900, input_tokens: 800_000, output_tokens: 200_000, cache_read_tokens: 50_000, cost_usd: "10" }),
    makeUsageRow("claude-sonnet-4", "auditor", { calls: 300, input_tokens: 150_000, output_tokens: 30_000, cost_usd: "2" }),
    makeUsageRow("gpt-4o", "planner", { calls: 34, input_tokens: 50_000, output_tokens: 4_567, cost_usd: "0.5" }),
  ],
};

export const emptyUsageSummary: UsageSummary = {
  calls: 0,
  input_tokens: 0,
  output_tokens: 0,
  total_tokens: 0,
  cache_read_tokens: 0,
  cache_write_tokens: 0,
  cost_usd: "0",
  by_model_role: [],
};

export function makeUsagePoint(start: string, model: string, role: UsagePoint["role"], overrides: Partial<UsagePoint> = {}): UsagePoint {
  return { start, model, role, calls: 1, input_tokens: 100, output_tokens: 10, cost_usd: "0.25", ...overrides };
}

/** A run that stopped: one phase complete, the next FAILED, the run DONE_FAILED_ENVIRONMENT. */
export const failedPhase: PhaseRead = {
  phase_id: "p2",
  phase_index: 1,
  tier_id: "t1",
  name: "Add a test",
  description: "Cover greet()",
  state: "FAILED",
  complexity: "low",
  task_category: "tests",
  builder_mode: null,
  quality_level: null,
  attempts_count: 3,
  max_attempts: 3,
  commit_sha: null,
  cost_usd: "0.0012",
  tokens_used: 334,
  failure_reason: "pytest could not start: No module named 'pytest'",
  scope: {},
  started_at: "2024-05-01T10:01:06Z",
  finished_at: "2024-05-01T10:03:00Z",
};

export const failedRunDetail: RunDetail = {
  ...runDetail,
  state: "DONE_FAILED_ENVIRONMENT",
  finished_at: "2024-05-01T10:03:01Z",
  failure_reason: "The test environment is broken: No module named 'pytest'",
  tiers: runDetail.tiers.map((tier) => ({
    ...tier,
    state: "FAILED",
    phases: tier.phases.map((phase) => (phase.phase_id === failedPhase.phase_id ? failedPhase : phase)),
  })),
};
