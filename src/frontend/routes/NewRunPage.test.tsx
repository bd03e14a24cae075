import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { Route, useParams } from "wouter";

import { resetAuthForTests } from "../api/auth";
import {
  errorResponse,
  jsonResponse,
  otherProject,
  projectRead,
  requestsTo,
  routes,
  runDetail,
  type Handler,
} from "../test/fixtures";
import { currentLocation, renderWithProviders } from "../test/render";
import NewRunPage, { planContentType } from "./NewRunPage";

// openapi-fetch keeps the fetch and Request it finds when `api` is created: install first.
const { fetchMock } = await vi.hoisted(async () => {
  const { installFetchMock } = await import("../test/fixtures");
  return { fetchMock: installFetchMock() };
});

const YAML_PLAN = `tiers:
  - tier_id: t1
    name: Foundations
phases:
  - phase_id: p1
    tier_id: t1
    name: Add type hints
`;

const JSON_PLAN = `{"tiers": [{"tier_id": "t1", "name": "Foundations"}], "phases": []}`;

function RunMarker() {
  const { runId } = useParams<{ runId: string }>();
  return <p>Run page for {runId}</p>;
}

function serve(createRun: Handler) {
  fetchMock.mockImplementation(
    routes({
      "GET /api/projects": () => jsonResponse([projectRead, otherProject]),
      "POST /api/runs": createRun,
    }),
  );
}

function renderPage() {
  return renderWithProviders(<NewRunPage />, {
    route: "/runs/new",
    path: "/runs/new",
    routes: <Route path="/runs/:runId" component={RunMarker} />,
  });
}

function planBox(): HTMLElement {
  return screen.getByRole("textbox", { name: "Plan (YAML or JSON)" });
}

function createRequests(): Request[] {
  return requestsTo(fetchMock, "POST", "/api/runs");
}

beforeEach(() => {
  resetAuthForTests();
  fetchMock.mockReset();
});

describe("NewRunPage", () => {
  it("sends a YAML plan as typed, with the YAML content type", async () => {
    const user = userEvent.setup();
    serve(() => jsonResponse(runDetail, 201));
    renderPage();

    await user.type(planBox(), YAML_PLAN);
    await user.click(screen.getByRole("button", { name: "Create run" }));

    await waitFor(() => expect(createRequests()).toHaveLength(1));
    const [request] = createRequests();
    expect(request?.url).toBe(`${window.location.origin}/api/runs`);
    expect(request?.headers.get("Content-Type")).toBe("application/yaml");
    expect(await request?.text()).toBe(YAML_PLAN);
  });

  it("sends a JSON plan with the JSON content type", async () => {
    const user = userEvent.setup();
    serve(() => jsonResponse(runDetail, 201));
    renderPage();

    // user.type would read the braces as key descriptors: paste the text instead.
    await user.click(planBox());
    await user.paste(JSON_PLAN);
    await user.click(screen.getByRole("button", { name: "Create run" }));

    await waitFor(() => expect(createRequests()).toHaveLength(1));
    const [request] = createRequests();
    expect(request?.headers.get("Content-Type")).toBe("application/json");
    expect(await request?.text()).toBe(JSON_PLAN);
  });

  it("cannot submit an empty plan", async () => {
    const user = userEvent.setup();
    serve(() => jsonResponse(runDetail, 201));
    renderPage();

    expect(screen.getByRole("button", { name: "Create run" })).toBeDisabled();
    await user.type(planBox(), "   ");
    expect(screen.getByRole("button", { name: "Create run" })).toBeDisabled();
    expect(createRequests()).toHaveLength(0);
  });

  it("shows each problem of a rejected plan at its place and marks the plan invalid", async () => {
    const user = userEvent.setup();
    serve(() =>
      errorResponse(422, "invalid_plan", "invalid plan: 1 problem", [
        { loc: "phases[1].tier_id", message: "unknown tier 'x'" },
      ]),
    );
    renderPage();
    expect(planBox()).toHaveAttribute("aria-invalid", "false");

    await user.type(planBox(), YAML_PLAN);
    await user.click(screen.getByRole("button", { name: "Create run" }));

    const problems = await screen.findByRole("list", { name: "Problems in the plan" });
    const items = within(problems).getAllByRole("listitem");
    expect(items).toHaveLength(1);
    expect(items[0]).toHaveTextContent("phases[1].tier_id unknown tier 'x'");
    expect(within(items[0] ?? document.body).getByText("phases[1].tier_id")).toHaveClass("loc");
    expect(screen.getByRole("alert")).toHaveTextContent("invalid plan: 1 problem");
    expect(planBox()).toHaveAttribute("aria-invalid", "true");
    // The problems are read out with the field.
    const describedBy = planBox().getAttribute("aria-describedby")?.split(" ") ?? [];
    expect(describedBy).toContain(problems.closest("[role=alert]")?.id);
    // Nothing navigated away.
    expect(currentLocation()).toBe("/runs/new");
  });

  it("shows a refusal without details as one message", async () => {
    const user = userEvent.setup();
    serve(() => errorResponse(409, "run_exists", "A run with id run-2024-alpha exists"));
    renderPage();

    await user.type(planBox(), YAML_PLAN);
    await user.click(screen.getByRole("button", { name: "Create run" }));

    expect(await screen.findByRole("alert")).toHaveTextContent("A run with id run-2024-alpha exists");
    expect(planBox()).toHaveAttribute("aria-invalid", "false");
  });

  it("opens the new run's page once it is created", async () => {
    const user = userEvent.setup();
    serve(() => jsonResponse({ ...runDetail, run_id: "run-42.b_c" }, 201));
    renderPage();

    await user.type(planBox(), YAML_PLAN);
    await user.click(screen.getByRole("button", { name: "Create run" }));

    expect(await screen.findByText("Run page for run-42.b_c")).toBeInTheDocument();
    expect(currentLocation()).toBe("/runs/run-42.b_c");
  });

  it("lists the projects from /api/projects to choose from", async () => {
    serve(() => jsonResponse(runDetail, 201));
    renderPage();

    const select = screen.getByRole("combobox", { name: "Project" });
    await waitFor(() => expect(within(select).getAllByRole("option")).toHaveLength(3));
    expect(within(select).getAllByRole("option").map((option) => [option.getAttribute("value"), option.textContent])).toEqual([
      ["", "As the plan says (or “default”)"],
      ["demo", "demo — git@example.com:acme/demo.git"],
      ["website", "website"],
    ]);
    expect(requestsTo(fetchMock, "GET", "/api/projects")).toHaveLength(1);
  });
});

describe("planContentType", () => {
  it.each([
    ['{"phases": []}', "application/json"],
    ['\n  {"phases": []}', "application/json"],
    ["phases: []", "application/yaml"],
    ["# a comment\n{}", "application/yaml"],
  ])("%j is sent as %s", (text, type) => {
    expect(planContentType(text)).toBe(type);
  });
});
