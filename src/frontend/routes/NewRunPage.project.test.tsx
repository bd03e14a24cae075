// The New run page's project choice: sent as `?project=`, and a refusal about the project shown
// at the project field.
import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { Route } from "wouter";

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
import NewRunPage from "./NewRunPage";

// openapi-fetch keeps the fetch and Request it finds when `api` is created: install first.
const { fetchMock } = await vi.hoisted(async () => {
  const { installFetchMock } = await import("../test/fixtures");
  return { fetchMock: installFetchMock() };
});

const YAML_PLAN = `tiers:
  - tier_id: t1
    name: Foundations
`;

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
    routes: <Route path="/runs/:runId">Run page</Route>,
  });
}

function projectSelect(): HTMLElement {
  return screen.getByRole("combobox", { name: "Project" });
}

async function projectsListed() {
  await waitFor(() => expect(within(projectSelect()).getAllByRole("option")).toHaveLength(3));
}

async function submitPlan(user: ReturnType<typeof userEvent.setup>) {
  await user.type(screen.getByRole("textbox", { name: "Plan (YAML or JSON)" }), YAML_PLAN);
  await user.click(screen.getByRole("button", { name: "Create run" }));
}

function createRequestUrls(): URL[] {
  return requestsTo(fetchMock, "POST", "/api/runs").map((request) => new URL(request.url));
}

beforeEach(() => {
  resetAuthForTests();
  fetchMock.mockReset();
});

describe("NewRunPage: the project", () => {
  it("sends the chosen project as ?project=", async () => {
    const user = userEvent.setup();
    serve(() => jsonResponse({ ...runDetail, project: "website" }, 201));
    renderPage();
    await projectsListed();

    await user.selectOptions(projectSelect(), "website");
    expect(projectSelect()).toHaveValue("website");
    await submitPlan(user);

    await waitFor(() => expect(createRequestUrls()).toHaveLength(1));
    const [url] = createRequestUrls();
    expect(url?.pathname).toBe("/api/runs");
    expect(url?.search).toBe("?project=website");
    expect(await screen.findByText("Run page")).toBeInTheDocument();
  });

  it("left on the first option, sends no project parameter", async () => {
    const user = userEvent.setup();
    serve(() => jsonResponse(runDetail, 201));
    renderPage();
    await projectsListed();

    expect(projectSelect()).toHaveValue("");
    await submitPlan(user);

    await waitFor(() => expect(createRequestUrls()).toHaveLength(1));
    const [url] = createRequestUrls();
    expect(url?.searchParams.has("project")).toBe(false);
    expect(url?.search).toBe("");
  });

  it("going back to the first option after choosing one sends no project parameter", async () => {
    const user = userEvent.setup();
    serve(() => jsonResponse(runDetail, 201));
    renderPage();
    await projectsListed();

    await user.selectOptions(projectSelect(), "demo");
    await user.selectOptions(projectSelect(), "");
    await submitPlan(user);

    await waitFor(() => expect(createRequestUrls()).toHaveLength(1));
    expect(createRequestUrls()[0]?.searchParams.has("project")).toBe(false);
  });

  it("shows an unknown project (404) at the project field, not as a plan problem", async () => {
    const user = userEvent.setup();
    serve(() => errorResponse(404, "not_found", "Project 'website' is not registered"));
    renderPage();
    await projectsListed();
    expect(projectSelect()).toHaveAttribute("aria-invalid", "false");
    expect(projectSelect()).not.toHaveAttribute("aria-describedby");

    await user.selectOptions(projectSelect(), "website");
    await submitPlan(user);

    const message = await screen.findByText("Project 'website' is not registered");
    expect(projectSelect()).toHaveAttribute("aria-invalid", "true");
    // The message is read out with the field.
    expect(projectSelect().getAttribute("aria-describedby")).toBe(message.id);
    expect(message).toHaveClass("form-error");
    // Shown once, at the field: no general alert, and the plan is not marked.
    expect(screen.queryByRole("alert")).not.toBeInTheDocument();
    expect(screen.getByRole("textbox", { name: "Plan (YAML or JSON)" })).toHaveAttribute("aria-invalid", "false");
    expect(currentLocation()).toBe("/runs/new");
  });

  it("shows a validation problem located at `project` at the project field", async () => {
    const user = userEvent.setup();
    serve(() =>
      errorResponse(422, "invalid_plan", "invalid plan: 1 problem", [
        { loc: "project", message: "project name must be lowercase" },
      ]),
    );
    renderPage();
    await projectsListed();

    await submitPlan(user);

    const message = await screen.findByText("project name must be lowercase");
    expect(projectSelect()).toHaveAttribute("aria-invalid", "true");
    expect(projectSelect().getAttribute("aria-describedby")).toBe(message.id);
    expect(screen.queryByRole("list", { name: "Problems in the plan" })).not.toBeInTheDocument();
  });
});
