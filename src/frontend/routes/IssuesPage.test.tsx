import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

import { resetAuthForTests } from "../api/auth";
import type { components } from "../api/schema";
import type { RuleRead } from "../api/types";
import { jsonResponse, projectRead, requestsTo, routes } from "../test/fixtures";
import { renderWithProviders } from "../test/render";
import IssuesPage from "./IssuesPage";

// openapi-fetch keeps the fetch and Request it finds when `api` is created: install first.
const { fetchMock } = await vi.hoisted(async () => {
  const { installFetchMock } = await import("../test/fixtures");
  return { fetchMock: installFetchMock() };
});

type RulesPage = components["schemas"]["Page_RuleRead_"];
type IssueRead = components["schemas"]["IssueRead"];
type IssuesPageBody = components["schemas"]["Page_IssueRead_"];

const issue: IssueRead = {
  issue_key: "tests:test_greet:TypeError",
  project: "demo",
  title: "test_greet fails with a TypeError",
  category: "tests",
  severity: "major",
  source: "tests",
  status: "open",
  occurrence_count: 3,
  age_in_runs: 2,
  evidence: {},
  first_seen_run_id: "run-2024-alpha",
  last_seen_run_id: "run-2024-beta",
  created_at: "2024-05-01T10:00:00Z",
  updated_at: "2024-05-02T10:00:00Z",
};

function makeRule(id: number, stage: RuleRead["stage"], overrides: Partial<RuleRead> = {}): RuleRead {
  return {
    id,
    stage,
    text: `Rule ${id}: annotate return types`,
    project: "demo",
    scope_pattern: null,
    task_categories: [],
    evidence_issue_keys: [],
    issue_key: null,
    learned_from_runs: [],
    confirmations: 0,
    stage_reason: null,
    hit_count: 0,
    miss_count: 0,
    created_at: "2024-05-01T10:00:00Z",
    updated_at: "2024-05-01T10:00:00Z",
    ...overrides,
  };
}

// One rule of each stage, ids 1–4.
const hint = makeRule(1, "hint", {
  issue_key: issue.issue_key,
  learned_from_runs: ["run-2024-alpha"],
  stage_reason: "fixed once, in run-2024-alpha",
});
const candidate = makeRule(2, "candidate", {
  issue_key: issue.issue_key,
  evidence_issue_keys: [issue.issue_key],
  learned_from_runs: ["run-2024-alpha", "run-2024-beta"],
  confirmations: 1,
  stage_reason: "the failure recurred and was fixed again in run-2024-beta",
});
const active = makeRule(3, "active", { hit_count: 4, miss_count: 1 });
const retired = makeRule(4, "retired", { stage_reason: "its failure kept coming back" });

function rulesPage(items: RuleRead[]): RulesPage {
  return { items, total: items.length, limit: 200, offset: 0 };
}

function issuesPage(items: IssueRead[]): IssuesPageBody {
  return { items, total: items.length, limit: 200, offset: 0 };
}

const APPROVE_HINT = `/api/rules/${hint.id}/approve`;

/** Serves the issues, the projects and the rules; approving a rule makes it active. */
function serve(initial: RuleRead[] = [hint, candidate, active, retired]) {
  let rules = initial;
  fetchMock.mockImplementation(
    routes({
      "GET /api/issues": () => jsonResponse(issuesPage([issue])),
      "GET /api/projects": () => jsonResponse([projectRead]),
      "GET /api/rules": () => jsonResponse(rulesPage(rules)),
      [`POST ${APPROVE_HINT}`]: () => {
        const approved: RuleRead = { ...hint, stage: "active", stage_reason: "approved from the dashboard" };
        rules = rules.map((rule) => (rule.id === hint.id ? approved : rule));
        return jsonResponse(approved);
      },
    }),
  );
}

function rulesTable(): Promise<HTMLElement> {
  return screen.findByRole("table", { name: "Learned rules" });
}

/** The cells of the rules table's row for `rule`. */
function cellsOf(table: HTMLElement, rule: RuleRead): HTMLElement[] {
  const row = within(table)
    .getAllByRole("row")
    .find((candidateRow) => within(candidateRow).queryByText(rule.text));
  if (!row) throw new Error(`No row for rule ${rule.id}`);
  return within(row).getAllByRole("cell");
}

beforeEach(() => {
  resetAuthForTests();
  fetchMock.mockReset();
});

describe("IssuesPage", () => {
  it("lists the backlog's issues", async () => {
    serve();
    renderWithProviders(<IssuesPage />);

    const table = await screen.findByRole("table", { name: "Issues, most severe first" });
    expect(within(table).getByText(issue.title)).toBeInTheDocument();
    expect(within(table).getByText(issue.issue_key)).toBeInTheDocument();
  });

  it("shows each rule's stage, Approve only for hints and candidates, Retire for all but retired ones", async () => {
    serve();
    renderWithProviders(<IssuesPage />);
    const table = await rulesTable();

    // Rule | Stage | Applies to | Evidence | Hits / misses | Actions
    for (const rule of [hint, candidate, active, retired]) {
      const badge = within(cellsOf(table, rule)[1] ?? document.body).getByText(rule.stage);
      expect(badge).toHaveClass("badge", `stage-${rule.stage}`);
    }

    expect(within(table).getByRole("button", { name: "Approve rule 1" })).toBeEnabled();
    expect(within(table).getByRole("button", { name: "Approve rule 2" })).toBeEnabled();
    expect(within(table).queryByRole("button", { name: "Approve rule 3" })).not.toBeInTheDocument();
    expect(within(table).queryByRole("button", { name: "Approve rule 4" })).not.toBeInTheDocument();

    expect(within(table).getByRole("button", { name: "Retire rule 1" })).toBeEnabled();
    expect(within(table).getByRole("button", { name: "Retire rule 2" })).toBeEnabled();
    expect(within(table).getByRole("button", { name: "Retire rule 3" })).toBeEnabled();
    expect(within(table).queryByRole("button", { name: "Retire rule 4" })).not.toBeInTheDocument();
  });

  it("shows the runs that fixed the failure, the confirmations and why the rule has its stage", async () => {
    serve();
    renderWithProviders(<IssuesPage />);
    const table = await rulesTable();

    const candidateEvidence = cellsOf(table, candidate)[3];
    expect(candidateEvidence).toHaveTextContent("fixed in 2 runs, 1 confirmation");
    expect(candidateEvidence).toHaveTextContent(candidate.stage_reason ?? "");
    expect(candidateEvidence).toHaveTextContent(issue.issue_key);

    // One run and no confirmation yet: singular, and no confirmation count.
    const hintEvidence = cellsOf(table, hint)[3];
    expect(hintEvidence).toHaveTextContent("fixed in 1 run");
    expect(hintEvidence).not.toHaveTextContent("confirmation");
    expect(hintEvidence).toHaveTextContent(hint.stage_reason ?? "");

    // A rule made by hand: no runs, no reason.
    expect(cellsOf(table, active)[3]).toHaveTextContent(/^$/);
    expect(cellsOf(table, retired)[3]).toHaveTextContent(/^its failure kept coming back$/);
  });

  it("approves a hint: POSTs to /api/rules/{id}/approve and reads the rules again", async () => {
    const user = userEvent.setup();
    serve();
    renderWithProviders(<IssuesPage />);
    const table = await rulesTable();
    expect(requestsTo(fetchMock, "GET", "/api/rules")).toHaveLength(1);
    expect(requestsTo(fetchMock, "GET", "/api/rules")[0]?.url).toBe(`${window.location.origin}/api/rules?limit=200`);

    await user.click(within(table).getByRole("button", { name: `Approve rule ${hint.id}` }));

    await waitFor(() => expect(requestsTo(fetchMock, "POST", APPROVE_HINT)).toHaveLength(1));
    const posts = fetchMock.mock.calls.map(([request]) => request).filter((request) => request.method === "POST");
    expect(posts).toHaveLength(1);
    expect(posts[0]?.method).toBe("POST");
    expect(posts[0]?.url).toBe(`${window.location.origin}${APPROVE_HINT}`);
    expect(await posts[0]?.clone().json()).toEqual({});

    // The rules list is read again and shows the rule active, with no Approve button.
    await waitFor(() => expect(requestsTo(fetchMock, "GET", "/api/rules")).toHaveLength(2));
    await waitFor(() => expect(within(cellsOf(table, hint)[1] ?? document.body).getByText("active")).toBeInTheDocument());
    expect(within(table).queryByRole("button", { name: `Approve rule ${hint.id}` })).not.toBeInTheDocument();
    expect(within(table).getByRole("button", { name: `Retire rule ${hint.id}` })).toBeEnabled();
    expect(cellsOf(table, hint)[3]).toHaveTextContent("approved from the dashboard");
  });
});
