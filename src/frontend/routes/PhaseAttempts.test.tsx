import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

import { resetAuthForTests } from "../api/auth";
import type { AttemptRead } from "../api/types";
import { errorResponse, jsonResponse, makeAttempt, phaseAttempts, requestsTo, routes, type Handler } from "../test/fixtures";
import { renderWithProviders } from "../test/render";
import { PhaseAttempts } from "./PhaseAttempts";

// openapi-fetch keeps the fetch and Request it finds when `api` is created: install first.
const { fetchMock } = await vi.hoisted(async () => {
  const { installFetchMock } = await import("../test/fixtures");
  return { fetchMock: installFetchMock() };
});

const RUN = "run-2024-alpha";
const ATTEMPTS_PATH = `/api/runs/${RUN}/phases/p1/attempts`;

function serve(handler: Handler) {
  fetchMock.mockImplementation(routes({ [`GET ${ATTEMPTS_PATH}`]: handler }));
}

function serveAttempts(attempts: AttemptRead[]) {
  serve(() => jsonResponse(attempts));
}

function renderAttempts() {
  return renderWithProviders(<PhaseAttempts runId={RUN} phaseId="p1" />);
}

/** The attempt's card, found by its accessible name ("Attempt N"). */
function attemptCard(number: number): HTMLElement {
  return screen.getByRole("article", { name: `Attempt ${number}` });
}

/** The text of the diff lines of one kind ("add", "del") in the card, exactly as shown. */
function diffLines(card: HTMLElement, kind: "add" | "del"): string[] {
  return Array.from(card.querySelectorAll(`.diff-line.diff-${kind}`)).map((line) => (line.textContent ?? "").replace(/\n$/, ""));
}

/** The JSON a verdict block shows under its heading, parsed. */
function verdictUnder(card: HTMLElement, title: string): unknown {
  const heading = within(card).getByRole("heading", { name: title });
  const json = heading.parentElement?.querySelector("pre");
  expect(json).not.toBeNull();
  return JSON.parse(json?.textContent ?? "null");
}

beforeEach(() => {
  resetAuthForTests();
  fetchMock.mockReset();
});

describe("PhaseAttempts", () => {
  it("asks for the phase's attempts once", async () => {
    serveAttempts(phaseAttempts);
    renderAttempts();

    await screen.findByRole("article", { name: "Attempt 1" });
    const requests = requestsTo(fetchMock, "GET", ATTEMPTS_PATH);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.url).toBe(`${window.location.origin}${ATTEMPTS_PATH}`);
  });

  it("shows the attempts newest first, each with its heading and outcome badge", async () => {
    serveAttempts(phaseAttempts);
    renderAttempts();

    await screen.findByRole("article", { name: "Attempt 1" });
    const cards = screen.getAllByRole("article");
    expect(cards.map((card) => card.getAttribute("aria-label"))).toEqual(["Attempt 2", "Attempt 1"]);
    expect(screen.getAllByRole("heading", { level: 4 }).map((heading) => heading.textContent)).toEqual([
      "Attempt 2 success",
      "Attempt 1 tests_failed",
    ]);

    const successBadge = within(attemptCard(2)).getByText("success");
    expect(successBadge).toHaveClass("badge", "badge-success");
    const failedBadge = within(attemptCard(1)).getByText("tests_failed");
    expect(failedBadge).toHaveClass("badge", "badge-danger");
  });

  it("shows each attempt's model, diff, failure reason and test output", async () => {
    serveAttempts(phaseAttempts);
    renderAttempts();

    await screen.findByRole("article", { name: "Attempt 1" });
    const failed = attemptCard(1);
    expect(failed).toHaveTextContent("claude-haiku-4");
    expect(failed).toHaveTextContent("1,200 in / 340 out");
    expect(failed).toHaveTextContent("$0.0040");
    expect(within(failed).getByText("tests failed: test_greet expected str, got int")).toHaveClass("failure");

    // The diff: the file it touches and its added line, marked as an addition.
    expect(within(failed).getByText("greeting.py", { selector: "code" })).toBeInTheDocument();
    expect(within(failed).getByText("+def greet(name) -> int:")).toHaveClass("diff-add");
    expect(diffLines(failed, "add")).toEqual(["+def greet(name) -> int:"]);
    expect(diffLines(failed, "del")).toEqual(["-def greet(name):"]);

    // The test output sits in its own "Test output" section.
    const testOutput = within(failed).getByText("Test output").closest("details");
    expect(testOutput).not.toBeNull();
    expect(testOutput?.querySelector("pre")?.textContent).toBe(
      "FAILED tests/test_greeting.py::test_greet - TypeError: expected str\n1 failed in 0.03s",
    );

    const succeeded = attemptCard(2);
    expect(succeeded).toHaveTextContent("claude-sonnet-4");
    expect(within(succeeded).getByText("greeting.py", { selector: "code" })).toBeInTheDocument();
    expect(diffLines(succeeded, "add")).toEqual(["+def greet(name: str) -> str:", '+    """Say hello."""']);
    expect(within(succeeded).queryByText(/tests failed/)).not.toBeInTheDocument();
    expect(within(succeeded).getByText("Test output").closest("details")).toHaveTextContent("1 passed in 0.02s");
  });

  it("shows the governance and auditor verdicts as JSON under their headings, and only those given", async () => {
    serveAttempts(phaseAttempts);
    renderAttempts();

    await screen.findByRole("article", { name: "Attempt 1" });
    const failed = attemptCard(1);
    expect(verdictUnder(failed, "Governance")).toEqual({ decision: "allow", checked_paths: ["greeting.py"] });
    expect(verdictUnder(failed, "Tests")).toEqual({ passed: 0, failed: 1 });
    expect(within(failed).queryByRole("heading", { name: "Auditor" })).not.toBeInTheDocument();

    const succeeded = attemptCard(2);
    expect(verdictUnder(succeeded, "Auditor")).toEqual({ approved: true, notes: "Types match the docstring" });
    expect(within(succeeded).queryByRole("heading", { name: "Governance" })).not.toBeInTheDocument();
  });

  it("shows an attempt still running as in progress, without a diff or test output yet", async () => {
    serveAttempts([
      makeAttempt(1, { outcome: null, model: null, diff: null, test_output: null, duration_ms: null, finished_at: null }),
    ]);
    renderAttempts();

    const card = await screen.findByRole("article", { name: "Attempt 1" });
    expect(within(card).getByText("in progress")).toHaveClass("badge-active");
    expect(card).toHaveTextContent("no model");
    expect(within(card).getByText("No changes in this attempt.")).toBeInTheDocument();
    expect(within(card).getByText("No test output.")).toBeInTheDocument();
  });

  it("with no attempts, says so", async () => {
    serveAttempts([]);
    renderAttempts();

    expect(await screen.findByText("No attempt yet.")).toBeInTheDocument();
    expect(screen.queryByRole("article")).not.toBeInTheDocument();
  });

  it("shows the server's error message and tries again on request", async () => {
    const user = userEvent.setup();
    let failing = true;
    serve(() =>
      failing ? errorResponse(404, "not_found", "Phase p1 not found in run run-2024-alpha") : jsonResponse(phaseAttempts),
    );
    renderAttempts();

    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Phase p1 not found in run run-2024-alpha");
    expect(screen.queryByRole("article")).not.toBeInTheDocument();

    failing = false;
    await user.click(within(alert).getByRole("button", { name: "Try again" }));
    expect(await screen.findByRole("article", { name: "Attempt 2" })).toBeInTheDocument();
    await waitFor(() => expect(screen.queryByRole("alert")).not.toBeInTheDocument());
  });
});
