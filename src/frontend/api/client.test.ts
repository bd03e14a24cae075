import { beforeEach, describe, expect, it, vi } from "vitest";

import { errorResponse, jsonResponse, makeRunSummary, runDetail } from "../test/fixtures";
import { getApiKey, keyPromptState, resetAuthForTests, setApiKey } from "./auth";
import { ApiError, api, unwrap } from "./client";
import type { RunSummary } from "./types";

// openapi-fetch keeps the fetch and Request it finds when `api` is created: install first.
const { fetchMock } = await vi.hoisted(async () => {
  const { installFetchMock } = await import("../test/fixtures");
  return { fetchMock: installFetchMock() };
});

function page(items: RunSummary[]) {
  return { items, total: items.length, limit: 50, offset: 0 };
}

function lastRequest(): Request {
  const call = fetchMock.mock.calls.at(-1);
  if (!call) throw new Error("fetch was not called");
  return call[0];
}

beforeEach(() => {
  resetAuthForTests();
  fetchMock.mockReset();
  fetchMock.mockImplementation(async () => jsonResponse(page([makeRunSummary()])));
});

describe("api (the generated client)", () => {
  it("requests /api/runs on the page's own origin, with the query", async () => {
    const data = await unwrap(api.GET("/api/runs", { params: { query: { state: "RUNNING", limit: 5 } } }));

    expect(fetchMock).toHaveBeenCalledTimes(1);
    const request = lastRequest();
    expect(request.method).toBe("GET");
    expect(request.url).toBe(`${window.location.origin}/api/runs?state=RUNNING&limit=5`);
    expect(data.items[0]?.run_id).toBe("run-2024-alpha");
  });

  it("sends the stored key as a bearer token", async () => {
    setApiKey("  sk-test-123  ");

    await unwrap(api.GET("/api/runs"));

    expect(getApiKey()).toBe("sk-test-123");
    expect(lastRequest().headers.get("Authorization")).toBe("Bearer sk-test-123");
  });

  it("sends no Authorization header without a key", async () => {
    await unwrap(api.GET("/api/runs"));

    expect(lastRequest().headers.has("Authorization")).toBe(false);
  });

  it("opens the key prompt on 401 when no key was sent (missing, not refused)", async () => {
    fetchMock.mockImplementation(async () => errorResponse(401, "unauthorized", "API key required"));
    expect(keyPromptState()).toEqual({ open: false, rejected: false });

    await expect(unwrap(api.GET("/api/runs"))).rejects.toMatchObject({ status: 401, code: "unauthorized" });

    expect(keyPromptState()).toEqual({ open: true, rejected: false });
  });

  it("marks the key as refused on 401 when one was sent", async () => {
    setApiKey("revoked-key");
    fetchMock.mockImplementation(async () => errorResponse(401, "unauthorized", "Unknown or revoked API key"));

    await expect(unwrap(api.GET("/api/runs"))).rejects.toBeInstanceOf(ApiError);

    expect(keyPromptState()).toEqual({ open: true, rejected: true });
  });

  it("does not open the key prompt on other errors", async () => {
    fetchMock.mockImplementation(async () => errorResponse(403, "forbidden", "Scope too narrow"));

    await expect(unwrap(api.GET("/api/runs"))).rejects.toMatchObject({ status: 403 });

    expect(keyPromptState().open).toBe(false);
  });
});

describe("unwrap", () => {
  it("turns the error envelope into an ApiError with status, code, message and details", async () => {
    const details = [{ loc: "run_id", message: "no such run" }];
    fetchMock.mockImplementation(async () => errorResponse(404, "run_not_found", "Run nope not found", details));

    const error: unknown = await unwrap(
      api.GET("/api/runs/{run_id}", { params: { path: { run_id: "nope" } } }),
    ).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({
      name: "ApiError",
      status: 404,
      code: "run_not_found",
      message: "Run nope not found",
      details,
    });
    expect(lastRequest().url).toBe(`${window.location.origin}/api/runs/nope`);
  });

  it("gives details null when the envelope has none", async () => {
    fetchMock.mockImplementation(async () => errorResponse(409, "conflict", "Run is finished"));

    await expect(unwrap(api.GET("/api/runs"))).rejects.toMatchObject({ status: 409, code: "conflict", details: null });
  });

  it("names the status when the body is not an envelope", async () => {
    fetchMock.mockImplementation(async () => new Response("<html>Bad gateway</html>", { status: 502 }));

    await expect(unwrap(api.GET("/api/runs"))).rejects.toMatchObject({
      status: 502,
      code: "http_error",
      message: "The server answered 502",
    });
  });

  it("turns a network failure into ApiError network_error", async () => {
    fetchMock.mockRejectedValue(new TypeError("Failed to fetch"));

    const error: unknown = await unwrap(api.GET("/api/runs")).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 0, code: "network_error" });
    expect(String((error as ApiError).details)).toContain("Failed to fetch");
  });

  it("returns the data of a successful response", async () => {
    fetchMock.mockImplementation(async () => jsonResponse(runDetail));

    const run = await unwrap(api.GET("/api/runs/{run_id}", { params: { path: { run_id: runDetail.run_id } } }));

    expect(run).toEqual(runDetail);
  });
});
