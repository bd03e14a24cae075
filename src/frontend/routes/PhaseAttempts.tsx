// A phase's attempts, newest first: the model, the tokens, the diff it made, the test output,
// and what governance and the auditor decided.
import { useQuery } from "@tanstack/react-query";

import { api, unwrap } from "../api/client";
import type { AttemptRead } from "../api/types";
import { DiffView } from "../components/DiffView";
import { formatDuration, formatInteger, formatUsd } from "../components/format";
import { Empty, ErrorState, Loading } from "../components/QueryState";

function Verdict({ title, verdict }: { title: string; verdict: Record<string, unknown> | null | undefined }) {
  if (!verdict || Object.keys(verdict).length === 0) return null;
  return (
    <div className="verdict">
      <h5>{title}</h5>
      <pre className="json">{JSON.stringify(verdict, null, 2)}</pre>
    </div>
  );
}

function Attempt({ attempt }: { attempt: AttemptRead }) {
  return (
    <article className={`attempt attempt-${attempt.outcome ?? "running"}`} aria-label={`Attempt ${attempt.number}`}>
      <h4>
        Attempt {attempt.number}{" "}
        <span className={`badge badge-${attempt.outcome === "success" ? "success" : attempt.outcome ? "danger" : "active"}`}>
          {attempt.outcome ?? "in progress"}
        </span>
      </h4>
      <p className="muted small">
        {attempt.model ?? "no model"} · {formatInteger(attempt.prompt_tokens)} in / {formatInteger(attempt.completion_tokens)} out ·{" "}
        {formatUsd(attempt.cost_usd)}
        {attempt.duration_ms !== null ? ` · ${formatDuration(attempt.duration_ms)}` : ""}
      </p>
      {attempt.failure_reason ? <p className="failure small">{attempt.failure_reason}</p> : null}
      <details open>
        <summary>Diff</summary>
        <DiffView diff={attempt.diff} />
      </details>
      <details>
        <summary>Test output</summary>
        {attempt.test_output ? <pre className="test-output">{attempt.test_output}</pre> : <p className="muted">No test output.</p>}
      </details>
      <Verdict title="Governance" verdict={attempt.governance_verdict} />
      <Verdict title="Tests" verdict={attempt.test_result} />
      <Verdict title="Auditor" verdict={attempt.auditor_verdict} />
    </article>
  );
}

export function PhaseAttempts({ runId, phaseId }: { runId: string; phaseId: string }) {
  const attempts = useQuery({
    queryKey: ["attempts", runId, phaseId],
    queryFn: () =>
      unwrap(
        api.GET("/api/runs/{run_id}/phases/{phase_id}/attempts", {
          params: { path: { run_id: runId, phase_id: phaseId } },
        }),
      ),
  });
  if (attempts.isPending) return <Loading what="attempts" />;
  if (attempts.isError) return <ErrorState error={attempts.error} retry={() => void attempts.refetch()} />;
  if (attempts.data.length === 0) return <Empty>No attempt yet.</Empty>;
  return (
    <div className="attempts">
      {[...attempts.data].reverse().map((attempt) => (
        <Attempt key={attempt.number} attempt={attempt} />
      ))}
    </div>
  );
}
