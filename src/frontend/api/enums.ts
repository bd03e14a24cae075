// Runtime lists of the schema's enums, for filters and menus. The compiler checks each list
// against the generated type, so a state added to the API fails the build until it is here.
import type { RunState } from "./types";
import type { components } from "./schema";

type Exhaustive<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : never;

export const RUN_STATES = [
  "QUEUED",
  "RUNNING",
  "PAUSED",
  "DONE_SUCCESS",
  "DONE_FAILED_BUDGET_EXHAUSTED",
  "DONE_FAILED_POLICY_VIOLATION",
  "DONE_FAILED_REQUIRES_HUMAN_REVIEW",
  "DONE_FAILED_ENVIRONMENT",
  "CANCELLED",
] as const satisfies readonly RunState[];
export const runStatesComplete: Exhaustive<RunState, (typeof RUN_STATES)[number]> = true;

type IssueStatus = components["schemas"]["IssueStatus"];
export const ISSUE_STATUSES = ["open", "needs_cleanup", "resolved"] as const satisfies readonly IssueStatus[];
export const issueStatusesComplete: Exhaustive<IssueStatus, (typeof ISSUE_STATUSES)[number]> = true;

type IssueSeverity = components["schemas"]["IssueSeverity"];
export const ISSUE_SEVERITIES = ["critical", "major", "minor"] as const satisfies readonly IssueSeverity[];
export const issueSeveritiesComplete: Exhaustive<IssueSeverity, (typeof ISSUE_SEVERITIES)[number]> = true;
