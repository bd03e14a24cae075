import { screen } from "@testing-library/react";
import { beforeEach, describe, expect, it, vi } from "vitest";

import type { components } from "../api/schema";
import { jsonResponse, routes } from "../test/fixtures";
import { renderWithProviders } from "../test/render";
import SystemPage from "./SystemPage";

// openapi-fetch keeps the fetch and Request it finds when `api` is created: install first.
const { fetchMock } = await vi.hoisted(async () => {
  const { installFetchMock } = await import("../test/fixtures");
  return { fetchMock: installFetchMock() };
});

type HealthReport = components["schemas"]["HealthReport"];
type ExecutorHealth = components["schemas"]["ExecutorHealth"];

function health(executor: ExecutorHealth): HealthReport {
  return {
    status: "healthy",
    version: "0.1.0",
    database: { status: "ok", dialect: "postgresql", latency_ms: 1.5 },
    executor,
    memory: null,
  };
}

function serve(executor: ExecutorHealth): void {
  const report = health(executor);
  fetchMock.mockImplementation(
    routes({
      "GET /health": () => jsonResponse(report),
      "GET /ready": () => jsonResponse({ ...report, ready: true }),
    }),
  );
}

/** The value shown beside a label in the Workers panel. */
function fact(label: string): string | null {
  return screen.getByText(label, { selector: "dt" }).nextElementSibling?.textContent ?? null;
}

describe("SystemPage executor panel", () => {
  beforeEach(() => {
    fetchMock.mockReset();
  });

  it("shows the workers alive and the runs executing and waiting when workers execute runs", async () => {
    serve({ mode: "workers", threads: 0, busy: 3, workers: 4, waiting: 7 });
    renderWithProviders(<SystemPage />);

    expect(await screen.findByText("autopack worker processes")).toBeVisible();
    expect(fact("Workers alive")).toBe("4");
    expect(fact("Runs executing")).toBe("3");
    expect(fact("Runs waiting")).toBe("7");
    expect(screen.queryByText("Threads", { selector: "dt" })).toBeNull();
  });

  it("says unknown when the queue could not be read", async () => {
    serve({ mode: "workers", threads: 0, busy: 0, workers: null, waiting: null });
    renderWithProviders(<SystemPage />);

    expect(await screen.findByText("autopack worker processes")).toBeVisible();
    expect(fact("Workers alive")).toBe("unknown");
    expect(fact("Runs waiting")).toBe("unknown");
  });

  it("shows the server's own threads in the embedded mode", async () => {
    serve({ mode: "in_process", threads: 2, busy: 1, workers: null, waiting: null });
    renderWithProviders(<SystemPage />);

    expect(await screen.findByText("in-process executor")).toBeVisible();
    expect(fact("Threads")).toBe("2");
    expect(fact("Busy")).toBe("1");
    expect(screen.queryByText("Workers alive", { selector: "dt" })).toBeNull();
  });
});
