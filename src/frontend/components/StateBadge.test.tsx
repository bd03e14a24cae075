import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { RUN_STATES } from "../api/enums";
import { StateBadge, stateTone } from "./StateBadge";

describe("StateBadge", () => {
  it.each([
    ["DONE_SUCCESS", "success"],
    ["DONE_FAILED_BUDGET_EXHAUSTED", "danger"],
    ["DONE_FAILED_POLICY_VIOLATION", "danger"],
    ["DONE_FAILED_REQUIRES_HUMAN_REVIEW", "danger"],
    ["DONE_FAILED_ENVIRONMENT", "danger"],
    ["RUNNING", "active"],
    ["QUEUED", "neutral"],
    ["PAUSED", "warning"],
    ["CANCELLED", "neutral"],
  ])("gives %s the %s tone", (state, tone) => {
    render(<StateBadge state={state} />);

    const badge = screen.getByText(state.replaceAll("_", " "));
    expect(badge).toHaveClass("badge", `badge-${tone}`);
  });

  it("gives phase states their tones", () => {
    expect(stateTone("EXECUTING")).toBe("active");
    expect(stateTone("COMPLETE")).toBe("success");
    expect(stateTone("FAILED")).toBe("danger");
    expect(stateTone("BLOCKED")).toBe("warning");
  });

  it("every failed run state reads as danger", () => {
    const failed = RUN_STATES.filter((state) => state.startsWith("DONE_FAILED"));
    expect(failed.length).toBeGreaterThan(0);
    for (const state of failed) expect(stateTone(state)).toBe("danger");
  });

  it("falls back to neutral for a state it does not know", () => {
    expect(stateTone("SOMETHING_NEW")).toBe("neutral");
  });
});
