import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

import { resetAuthForTests } from "../api/auth";
import type { ApprovalRead } from "../api/types";
import {
  approvalsPage,
  errorResponse,
  jsonResponse,
  pendingApproval,
  requestsTo,
  routes,
  type Handler,
} from "../test/fixtures";
import { renderWithProviders } from "../test/render";
import { ApprovalsPanel } from "./ApprovalsPanel";

// openapi-fetch keeps the fetch and Request it finds when `api` is created: install first.
const { fetchMock } = await vi.hoisted(async () => {
  const { installFetchMock } = await import("../test/fixtures");
  return { fetchMock: installFetchMock() };
});

const RUN = "run-2024-alpha";
const APPROVE = `/api/approvals/${pendingApproval.id}/approve`;
const REJECT = `/api/approvals/${pendingApproval.id}/reject`;

/**
 * Serves the pending approvals (until one is decided, then none) and answers the decisions
 * with `decide`, by default the decided approval.
 */
function serve(decide?: Handler) {
  let pending: ApprovalRead[] = [pendingApproval];
  const decided = (status: "approved" | "rejected"): Handler =>
    async (request) => {
      const { reason } = (await request.clone().json()) as { reason: string };
      pending = [];
      return jsonResponse({ ...pendingApproval, status, reason, decided_by: "anonymous", decided_at: "2024-05-01T10:05:00Z" });
    };
  fetchMock.mockImplementation(
    routes({
      "GET /api/approvals": () => jsonResponse(approvalsPage(pending)),
      [`POST ${APPROVE}`]: decide ?? decided("approved"),
      [`POST ${REJECT}`]: decide ?? decided("rejected"),
    }),
  );
}

function renderPanel(blocked = true) {
  return renderWithProviders(<ApprovalsPanel runId={RUN} blocked={blocked} />);
}

function panel(): Promise<HTMLElement> {
  return screen.findByRole("region", { name: "Waiting for your decision" });
}

function reasonBox(): HTMLElement {
  return screen.getByRole("textbox", { name: "Reason (recorded with the decision)" });
}

beforeEach(() => {
  resetAuthForTests();
  fetchMock.mockReset();
});

describe("ApprovalsPanel", () => {
  it("asks for the run's pending approvals", async () => {
    serve();
    renderPanel();

    await panel();
    const [request] = requestsTo(fetchMock, "GET", "/api/approvals");
    const url = new URL(request?.url ?? "");
    expect(url.search).toBe(`?status=pending&run_id=${RUN}&limit=50`);
  });

  it("shows what is asked: the kind, the phase, why and the diff", async () => {
    serve();
    renderPanel();

    const region = await panel();
    const card = within(region).getByRole("article", { name: "Approval 7" });
    expect(within(card).getByRole("heading", { level: 3 })).toHaveTextContent("protected path in phase p2");
    expect(within(card).getByText("p2", { selector: "code" })).toBeInTheDocument();
    expect(card).toHaveTextContent("The change edits a protected path: .github/");
    // The subject's diff, as a diff (not as raw JSON).
    expect(within(card).getByText(".github/workflows/ci.yml", { selector: "code" })).toBeInTheDocument();
    expect(within(card).getByText("+on: [push, pull_request]")).toHaveClass("diff-add");
    expect(card.querySelector("pre.json")).toBeNull();
  });

  it("shows a subject without a diff as JSON", async () => {
    const subject = { why: "safety_critical run", attempt: 2 };
    fetchMock.mockImplementation(
      routes({
        "GET /api/approvals": () =>
          jsonResponse(approvalsPage([{ ...pendingApproval, kind: "safety_critical", phase_id: null, subject }])),
      }),
    );
    renderPanel();

    const region = await panel();
    expect(within(region).getByRole("heading", { level: 3 })).toHaveTextContent(/^safety critical$/);
    expect(JSON.parse(region.querySelector("pre.json")?.textContent ?? "null")).toEqual(subject);
  });

  it("enables Approve and Reject only once a reason is typed", async () => {
    const user = userEvent.setup();
    serve();
    renderPanel();
    await panel();

    const approve = screen.getByRole("button", { name: "Approve" });
    const reject = screen.getByRole("button", { name: "Reject" });
    expect(approve).toBeDisabled();
    expect(reject).toBeDisabled();

    await user.type(reasonBox(), "   ");
    expect(approve).toBeDisabled();
    expect(reject).toBeDisabled();

    await user.type(reasonBox(), "CI change reviewed");
    expect(approve).toBeEnabled();
    expect(reject).toBeEnabled();
    expect(requestsTo(fetchMock, "POST", APPROVE)).toHaveLength(0);
  });

  it("approves with the reason, then the decided approval leaves the panel", async () => {
    const user = userEvent.setup();
    serve();
    renderPanel();
    await panel();

    await user.type(reasonBox(), "CI change reviewed");
    await user.click(screen.getByRole("button", { name: "Approve" }));

    await waitFor(() => expect(requestsTo(fetchMock, "POST", APPROVE)).toHaveLength(1));
    const [request] = requestsTo(fetchMock, "POST", APPROVE);
    expect(request?.headers.get("Content-Type")).toBe("application/json");
    expect(await request?.clone().json()).toEqual({ reason: "CI change reviewed" });
    expect(requestsTo(fetchMock, "POST", REJECT)).toHaveLength(0);

    await waitFor(() => expect(screen.queryByRole("region", { name: "Waiting for your decision" })).not.toBeInTheDocument());
  });

  it("rejects with the reason", async () => {
    const user = userEvent.setup();
    serve();
    renderPanel();
    await panel();

    await user.type(reasonBox(), "Not in this run");
    await user.click(screen.getByRole("button", { name: "Reject" }));

    await waitFor(() => expect(requestsTo(fetchMock, "POST", REJECT)).toHaveLength(1));
    const [request] = requestsTo(fetchMock, "POST", REJECT);
    expect(await request?.clone().json()).toEqual({ reason: "Not in this run" });
    expect(requestsTo(fetchMock, "POST", APPROVE)).toHaveLength(0);
  });

  it("shows a refused decision as an alert and keeps the approval", async () => {
    const user = userEvent.setup();
    serve(() => errorResponse(409, "approval_decided", "Approval 7 was already decided: expired"));
    renderPanel();
    const region = await panel();

    await user.type(reasonBox(), "CI change reviewed");
    await user.click(screen.getByRole("button", { name: "Approve" }));

    expect(await within(region).findByRole("alert")).toHaveTextContent("Approval 7 was already decided: expired");
    expect(within(region).getByRole("article", { name: "Approval 7" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Approve" })).toBeEnabled();
  });

  it("with nothing pending, shows nothing", async () => {
    fetchMock.mockImplementation(routes({ "GET /api/approvals": () => jsonResponse(approvalsPage([])) }));
    renderPanel();

    await waitFor(() => expect(requestsTo(fetchMock, "GET", "/api/approvals")).toHaveLength(1));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(screen.queryByRole("region")).not.toBeInTheDocument();
    expect(screen.queryByText("Waiting for your decision")).not.toBeInTheDocument();
  });

  it("when the run is not blocked, renders nothing and asks for nothing", async () => {
    serve();
    const { container } = renderPanel(false);

    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(screen.queryByText("Waiting for your decision")).not.toBeInTheDocument();
    // Only the router's location display is there.
    expect(container.querySelectorAll("section, article")).toHaveLength(0);
    expect(requestsTo(fetchMock, "GET", "/api/approvals")).toHaveLength(0);
    expect(fetchMock).not.toHaveBeenCalled();
  });
});
