// Names for the generated schema types the dashboard uses. Every type here comes from
// schema.d.ts, which `npm run generate:api` writes from the API's OpenAPI schema: nothing
// about the backend is typed by hand.
import type { components } from "./schema";

type Schemas = components["schemas"];

export type RunSummary = Schemas["RunSummary"];
export type RunDetail = Schemas["RunDetail"];
export type RunState = Schemas["RunState"];
export type TierRead = Schemas["TierRead"];
export type PhaseRead = Schemas["PhaseRead"];
export type PhaseState = Schemas["PhaseState"];
export type Budget = Schemas["Budget"];
export type EventRead = Schemas["EventRead"];
export type ProjectRead = Schemas["ProjectRead"];
export type BacklogIssueRead = Schemas["BacklogIssueRead"];
export type ApprovalRead = Schemas["ApprovalRead"];
export type UsageSummary = Schemas["UsageSummary"];
export type HealthReport = Schemas["HealthReport"];
export type ErrorEnvelope = Schemas["ErrorEnvelope"];
export type AttemptRead = Schemas["AttemptRead"];
export type RuleRead = Schemas["RuleRead"];
export type UsagePoint = Schemas["UsagePoint"];
