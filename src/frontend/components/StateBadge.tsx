// A run's, tier's or phase's state as a badge whose colour says how it went.
const TONES: Record<string, string> = {
  QUEUED: "neutral",
  PENDING: "neutral",
  RUNNING: "active",
  IN_PROGRESS: "active",
  EXECUTING: "active",
  CI_RUNNING: "active",
  GATE: "active",
  PAUSED: "warning",
  BLOCKED: "warning",
  COMPLETE: "success",
  DONE_SUCCESS: "success",
  SKIPPED: "neutral",
  CANCELLED: "neutral",
  FAILED: "danger",
};

export function stateTone(state: string): string {
  return TONES[state] ?? (state.startsWith("DONE_FAILED") ? "danger" : "neutral");
}

export function StateBadge({ state }: { state: string }) {
  return <span className={`badge badge-${stateTone(state)}`}>{state.replaceAll("_", " ")}</span>;
}
