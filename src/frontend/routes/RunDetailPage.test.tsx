import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

import { resetAuthForTests } from "../api/auth";
import type { EventRead, RunDetail } from "../api/types";
import {
  errorResponse,
  failedPhase,
  failedRunDetail,
  jsonResponse,
  makeEvent,
  promotionRead,
  requestsTo,
  routes,
  runDetail,
  sseFrame,
  sseResponse,
  type Handler,
} from "../test/fixtures";
import { renderWithProviders } from "../test/render";
import RunDetailPage from "./RunDetailPage";

// openapi-fetch keeps the fetch and Request it finds when `api` is created: install first.
const { fetchMock } = await vi.hoisted(async () => {
  const { installFetchMock } = await import("../test/fixtures");
  return { fetchMock: installFetchMock() };
});

const RUN = runDetail.run_id;
const RUN_PATH = `/api/runs/${RUN}`;
const STREAM_PATH = `${RUN_PATH}/events/stream`;

const streamed: EventRead[] = [
  makeEvent(1, "phase.failed", { phase_id: "p2", payload: { reason: "No module named 'pytest'" } }),
  makeEvent(2, "run.state_changed", { payload: { from: "RUNNING", to: "DONE_FAILED_ENVIRONMENT" } }),
];

/** Serves the run (as `run()` says at the time of each request), a finite event stream and `more`. */
function serve(run: () => RunDetail, more: Record<string, Handler> = {}, events: EventRead[] = streamed) {
  fetchMock.mockImplementation(
    routes({
      [`GET ${RUN_PATH}`]: () => jsonResponse(run()),
      [`GET ${STREAM_PATH}`]: () => sseResponse(events.map(sseFrame)),
      "GET /api/approvals": () => jsonResponse({ items: [], total: 0, limit: 50, offset: 0 }),
      ...more,
    }),
  );
}

function renderPage() {
  return renderWithProviders(<RunDetailPage />, { route: `/runs/${RUN}`, path: "/runs/:runId" });
}

function title(): Promise<HTMLElement> {
  return screen.findByRole("heading", { level: 1, name: new RegExp(RUN) });
}

function statuses(): string[] {
  return screen.getAllByRole("status").map((status) => status.textContent ?? "");
}

beforeEach(() => {
  resetAuthForTests();
  fetchMock.mockReset();
});

describe("RunDetailPage", () => {
  it("shows the run's id and state in the heading, its goal and why it stopped", async () => {
    serve(() => failedRunDetail);
    renderPage();

    const heading = await title();
    expect(heading).toHaveTextContent(`Run ${RUN} DONE FAILED ENVIRONMENT`);
    expect(within(heading).getByText(RUN, { selector: "code" })).toBeInTheDocument();
    expect(within(heading).getByText("DONE FAILED ENVIRONMENT")).toHaveClass("badge-danger");
    expect(screen.getByText(failedRunDetail.goal)).toBeInTheDocument();
    expect(screen.getByRole("note")).toHaveTextContent(`Why it stopped: ${failedRunDetail.failure_reason ?? ""}`);
    expect(requestsTo(fetchMock, "GET", RUN_PATH)[0]?.url).toBe(`${window.location.origin}${RUN_PATH}`);
  });

  it("shows the tiers and their phases with their states", async () => {
    serve(() => failedRunDetail);
    renderPage();
    await title();

    const timeline = screen.getByRole("region", { name: "Tiers and phases" });
    expect(within(timeline).getByRole("heading", { level: 3, name: "Foundations" })).toBeInTheDocument();
    const phases = Array.from(timeline.querySelectorAll<HTMLElement>("li.phase"));
    expect(phases.map((phase) => phase.dataset.phaseId)).toEqual(["p1", "p2"]);
    const [first, second] = phases;
    expect(within(first ?? document.body).getByRole("button", { name: "Add type hints" })).toBeInTheDocument();
    expect(first).toHaveTextContent("COMPLETE");
    expect(within(second ?? document.body).getByRole("button", { name: "Add a test" })).toBeInTheDocument();
    expect(second).toHaveTextContent("FAILED");
    expect(second).toHaveTextContent(failedPhase.failure_reason ?? "");
  });

  it("opens a phase to show its attempts", async () => {
    const user = userEvent.setup();
    serve(() => failedRunDetail, { [`GET ${RUN_PATH}/phases/p2/attempts`]: () => jsonResponse([]) });
    renderPage();
    await title();

    const disclosure = screen.getByRole("button", { name: "Add a test" });
    expect(disclosure).toHaveAttribute("aria-expanded", "false");
    await user.click(disclosure);
    expect(disclosure).toHaveAttribute("aria-expanded", "true");
    expect(await screen.findByText("No attempt yet.")).toBeInTheDocument();
    expect(requestsTo(fetchMock, "GET", `${RUN_PATH}/phases/p2/attempts`)).toHaveLength(1);
  });

  it("retries a failed phase, and only a failed one", async () => {
    const user = userEvent.setup();
    serve(() => failedRunDetail, {
      [`POST ${RUN_PATH}/phases/p2/retry`]: () => jsonResponse({ ...failedPhase, state: "QUEUED", failure_reason: null }),
    });
    renderPage();
    await title();

    expect(screen.queryByRole("button", { name: "Retry phase p1" })).not.toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Retry phase p2" }));

    await waitFor(() => expect(requestsTo(fetchMock, "POST", `${RUN_PATH}/phases/p2/retry`)).toHaveLength(1));
    // The run is read again to show what the retry changed.
    await waitFor(() => expect(requestsTo(fetchMock, "GET", RUN_PATH).length).toBeGreaterThan(1));
  });

  it("shows a refused retry", async () => {
    const user = userEvent.setup();
    serve(() => failedRunDetail, {
      [`POST ${RUN_PATH}/phases/p2/retry`]: () => errorResponse(409, "retry_refused", "Phase p2 has used all 3 attempts"),
    });
    renderPage();
    await title();

    await user.click(screen.getByRole("button", { name: "Retry phase p2" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Phase p2 has used all 3 attempts");
  });

  it("shows the streamed events in the event log, and that the stream has ended", async () => {
    serve(() => failedRunDetail);
    renderPage();
    await title();

    const log = await screen.findByTestId("event-log");
    await waitFor(() => expect(within(log).getAllByRole("listitem")).toHaveLength(2));
    const [first, second] = within(log).getAllByRole("listitem");
    expect(first).toHaveAttribute("data-event-id", "1");
    expect(first).toHaveTextContent("phase.failed");
    expect(first).toHaveTextContent("p2");
    expect(first).toHaveTextContent("No module named 'pytest'");
    expect(second).toHaveAttribute("data-event-id", "2");
    expect(second).toHaveTextContent("run.state_changed");
    expect(second).toHaveTextContent("RUNNING → DONE_FAILED_ENVIRONMENT");

    await waitFor(() => expect(statuses()).toContain("Run finished: no more events"));
    const [request] = requestsTo(fetchMock, "GET", STREAM_PATH);
    expect(request?.headers.get("Accept")).toBe("text/event-stream");
  });

  it("with a finished run, offers no cancel", async () => {
    serve(() => failedRunDetail);
    renderPage();
    await title();

    expect(screen.queryByRole("button", { name: "Cancel run" })).not.toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Promote" })).not.toBeInTheDocument();
  });

  it("cancels a running run after confirmation", async () => {
    const user = userEvent.setup();
    let run: RunDetail = runDetail;
    const cancelled: RunDetail = { ...runDetail, state: "CANCELLED", finished_at: "2024-05-01T10:04:00Z" };
    serve(() => run, {
      [`POST ${RUN_PATH}/cancel`]: () => {
        run = cancelled;
        return jsonResponse(cancelled);
      },
    });
    renderPage();
    expect(await title()).toHaveTextContent("RUNNING");

    await user.click(screen.getByRole("button", { name: "Cancel run" }));
    // Nothing is sent before the confirmation.
    expect(requestsTo(fetchMock, "POST", `${RUN_PATH}/cancel`)).toHaveLength(0);
    expect(screen.getByText("Cancel this run? The phase in flight is stopped.")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Yes, cancel run" }));

    await waitFor(() => expect(requestsTo(fetchMock, "POST", `${RUN_PATH}/cancel`)).toHaveLength(1));
    const [request] = requestsTo(fetchMock, "POST", `${RUN_PATH}/cancel`);
    expect(await request?.clone().json()).toEqual({ reason: "cancelled from the dashboard" });
    await waitFor(() => expect(screen.getByRole("heading", { level: 1 })).toHaveTextContent("CANCELLED"));
    expect(screen.queryByRole("button", { name: "Cancel run" })).not.toBeInTheDocument();
  });

  it("keeps running when the confirmation is declined", async () => {
    const user = userEvent.setup();
    serve(() => runDetail);
    renderPage();
    await title();

    await user.click(screen.getByRole("button", { name: "Cancel run" }));
    await user.click(screen.getByRole("button", { name: "Keep running" }));

    expect(screen.getByRole("button", { name: "Cancel run" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Yes, cancel run" })).not.toBeInTheDocument();
    expect(requestsTo(fetchMock, "POST", `${RUN_PATH}/cancel`)).toHaveLength(0);
  });

  it("promotes a promotable run to the project's default branch and shows where it went", async () => {
    const user = userEvent.setup();
    const done: RunDetail = {
      ...runDetail,
      state: "DONE_SUCCESS",
      promotable: true,
      finished_at: "2024-05-01T10:04:00Z",
      head_commit: promotionRead.commit,
    };
    serve(() => done, { [`POST ${RUN_PATH}/promote`]: () => jsonResponse(promotionRead) });
    renderPage();
    await title();

    await user.click(screen.getByRole("button", { name: "Promote" }));

    await waitFor(() => expect(requestsTo(fetchMock, "POST", `${RUN_PATH}/promote`)).toHaveLength(1));
    const [request] = requestsTo(fetchMock, "POST", `${RUN_PATH}/promote`);
    expect(await request?.clone().json()).toEqual({ branch: null });
    await waitFor(() => expect(statuses()).toContain(`Promoted to main at ${promotionRead.commit.slice(0, 10)}`));
  });

  it("promotes into the branch typed", async () => {
    const user = userEvent.setup();
    const done: RunDetail = { ...runDetail, state: "DONE_SUCCESS", promotable: true };
    serve(() => done, {
      [`POST ${RUN_PATH}/promote`]: () => jsonResponse({ ...promotionRead, branch: "release" }),
    });
    renderPage();
    await title();

    await user.type(screen.getByRole("textbox", { name: "Target branch" }), " release ");
    await user.click(screen.getByRole("button", { name: "Promote" }));

    await waitFor(() => expect(requestsTo(fetchMock, "POST", `${RUN_PATH}/promote`)).toHaveLength(1));
    const [request] = requestsTo(fetchMock, "POST", `${RUN_PATH}/promote`);
    expect(await request?.clone().json()).toEqual({ branch: "release" });
    await waitFor(() => expect(statuses()).toContain(`Promoted to release at ${promotionRead.commit.slice(0, 10)}`));
  });

  it("shows the server's error when the run cannot be read", async () => {
    fetchMock.mockImplementation(
      routes({ [`GET ${RUN_PATH}`]: () => errorResponse(404, "not_found", `Run ${RUN} not found`) }),
    );
    renderPage();

    expect(await screen.findByRole("alert")).toHaveTextContent(`Run ${RUN} not found`);
    expect(screen.getByRole("heading", { level: 1 })).toHaveTextContent(`Run ${RUN}`);
    expect(screen.getByRole("link", { name: "Back to the runs" })).toHaveAttribute("href", "/");
  });
});
