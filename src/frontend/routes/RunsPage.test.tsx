import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

import { resetAuthForTests } from "../api/auth";
import type { RunSummary } from "../api/types";
import {
  errorResponse,
  jsonResponse,
  makeRunSummary,
  otherProject,
  projectRead,
  requestsTo,
  routes,
  runSummary,
} from "../test/fixtures";
import { currentLocation, renderWithProviders } from "../test/render";
import { RunsPage } from "./RunsPage";

// openapi-fetch keeps the fetch and Request it finds when `api` is created: install first.
const { fetchMock } = await vi.hoisted(async () => {
  const { installFetchMock } = await import("../test/fixtures");
  return { fetchMock: installFetchMock() };
});

const finishedRun = makeRunSummary({
  run_id: "run-2024-beta",
  goal: "Fix the flaky test",
  project: "website",
  state: "DONE_SUCCESS",
  phases_complete: 3,
  phases_total: 3,
  started_at: "2024-05-01T09:00:00Z",
  finished_at: "2024-05-01T09:02:05Z",
  budget: {
    tokens_used: 25_000,
    token_cap: null,
    cost_usd: "2",
    cost_cap_usd: null,
    max_duration_minutes: null,
    max_minor_issues_total: null,
    max_phases: null,
  },
});

function runsPage(items: RunSummary[], total = items.length) {
  return { items, total, limit: 50, offset: 0 };
}

function serve(items: RunSummary[]) {
  fetchMock.mockImplementation(
    routes({
      "GET /api/runs": () => jsonResponse(runsPage(items)),
      "GET /api/projects": () => jsonResponse([projectRead, otherProject]),
    }),
  );
}

function runRequests(): URL[] {
  return requestsTo(fetchMock, "GET", "/api/runs").map((request) => new URL(request.url));
}

beforeEach(() => {
  resetAuthForTests();
  fetchMock.mockReset();
});

describe("RunsPage", () => {
  it("lists each run with its link, state, project, phases and spend against the caps", async () => {
    serve([runSummary, finishedRun]);
    renderWithProviders(<RunsPage />);

    const link = await screen.findByRole("link", { name: "run-2024-alpha" });
    expect(link).toHaveAttribute("href", "/runs/run-2024-alpha");

    const rows = screen.getAllByRole("row").slice(1); // the first is the header
    expect(rows).toHaveLength(2);
    const [first, second] = rows.map((row) => within(row).getAllByRole("cell"));
    // Run | State | Project | Phases | Tokens / cap | Cost / cap | Started | Duration
    expect(first?.[0]).toHaveTextContent("run-2024-alpha");
    expect(first?.[0]).toHaveTextContent("Add type hints to the greeting module");
    expect(first?.[1]).toHaveTextContent("RUNNING");
    expect(first?.[2]).toHaveTextContent("demo");
    expect(first?.[3]).toHaveTextContent("2/5");
    expect(first?.[4]).toHaveTextContent("1,234 / 5,000");
    expect(first?.[5]).toHaveTextContent("$0.0042 / $1.50");

    expect(within(second?.[0] ?? document.body).getByRole("link")).toHaveAttribute("href", "/runs/run-2024-beta");
    expect(second?.[1]).toHaveTextContent("DONE SUCCESS");
    expect(second?.[2]).toHaveTextContent("website");
    expect(second?.[3]).toHaveTextContent("3/3");
    // No caps: the amount alone.
    expect(second?.[4]).toHaveTextContent(/^25K$/);
    expect(second?.[5]).toHaveTextContent(/^\$2\.00$/);
    expect(second?.[7]).toHaveTextContent("2 min 5 s");

    expect(screen.getByText("1–2 of 2")).toBeInTheDocument();
  });

  it("asks for the first page of all runs", async () => {
    serve([runSummary]);
    renderWithProviders(<RunsPage />);

    await screen.findByRole("link", { name: "run-2024-alpha" });
    const [first] = runRequests();
    expect(first?.origin).toBe(window.location.origin);
    expect(first?.search).toBe("?limit=50&offset=0");
  });

  it("filters by state: re-requests /api/runs with state=… and puts it in the URL", async () => {
    const user = userEvent.setup();
    serve([runSummary]);
    renderWithProviders(<RunsPage />);
    await screen.findByRole("link", { name: "run-2024-alpha" });

    await user.selectOptions(screen.getByRole("combobox", { name: "State" }), "DONE_FAILED_BUDGET_EXHAUSTED");

    await waitFor(() => expect(runRequests().some((url) => url.searchParams.has("state"))).toBe(true));
    const filtered = runRequests().find((url) => url.searchParams.has("state"));
    expect(filtered?.searchParams.get("state")).toBe("DONE_FAILED_BUDGET_EXHAUSTED");
    expect(filtered?.searchParams.get("offset")).toBe("0");
    expect(currentLocation()).toBe("/?state=DONE_FAILED_BUDGET_EXHAUSTED");
    expect(screen.getByRole("combobox", { name: "State" })).toHaveValue("DONE_FAILED_BUDGET_EXHAUSTED");
  });

  it("reads the filters from the URL", async () => {
    serve([runSummary]);
    renderWithProviders(<RunsPage />, { route: "/?state=RUNNING&project=demo" });

    await screen.findByRole("link", { name: "run-2024-alpha" });
    expect(runRequests()[0]?.search).toBe("?state=RUNNING&project=demo&limit=50&offset=0");
    expect(screen.getByRole("combobox", { name: "State" })).toHaveValue("RUNNING");
    await waitFor(() => expect(screen.getByRole("combobox", { name: "Project" })).toHaveValue("demo"));
  });

  it("lists the projects in the project filter", async () => {
    serve([runSummary]);
    renderWithProviders(<RunsPage />);

    const select = screen.getByRole("combobox", { name: "Project" });
    await waitFor(() =>
      expect(within(select).getAllByRole("option").map((option) => option.textContent)).toEqual([
        "All projects",
        "demo",
        "website",
      ]),
    );
  });

  it("with no runs at all, offers to start one from a plan", async () => {
    serve([]);
    renderWithProviders(<RunsPage />);

    const link = await screen.findByRole("link", { name: "Start one from a plan" });
    expect(link).toHaveAttribute("href", "/runs/new");
    expect(screen.queryByRole("table")).not.toBeInTheDocument();
  });

  it("with filters matching nothing, says so", async () => {
    serve([]);
    renderWithProviders(<RunsPage />, { route: "/?state=PAUSED" });

    expect(await screen.findByText("No run matches these filters.")).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: "Start one from a plan" })).not.toBeInTheDocument();
  });

  it("shows the server's error message and tries again on request", async () => {
    const user = userEvent.setup();
    let failing = true;
    fetchMock.mockImplementation(
      routes({
        "GET /api/runs": () =>
          failing ? errorResponse(500, "internal_error", "Database is locked") : jsonResponse(runsPage([runSummary])),
        "GET /api/projects": () => jsonResponse([projectRead]),
      }),
    );
    renderWithProviders(<RunsPage />);

    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Database is locked");
    const retry = within(alert).getByRole("button", { name: "Try again" });

    failing = false;
    await user.click(retry);

    expect(await screen.findByRole("link", { name: "run-2024-alpha" })).toBeInTheDocument();
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
    expect(runRequests()).toHaveLength(2);
  });
});
