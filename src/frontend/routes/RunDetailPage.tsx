// One run: its budgets, its tiers and phases as a timeline, the live event log, each phase's
// attempts, and the actions a person can take (cancel, retry, approve/reject, promote).
import { useState } from "react";
import { Link, useParams } from "wouter";

import { isActiveRun, useCancelRun, useRun } from "../api/queries";
import type { RunDetail } from "../api/types";
import { BudgetGauge } from "../components/BudgetGauge";
import {
  elapsedMs,
  formatDateTime,
  formatDuration,
  formatInteger,
  formatUsd,
  shortSha,
  toNumber,
} from "../components/format";
import { ActionError, ErrorState, Loading } from "../components/QueryState";
import { StateBadge } from "../components/StateBadge";
import { ApprovalsPanel } from "./ApprovalsPanel";
import { EventLog } from "./EventLog";
import { PromoteButton } from "./PromoteButton";
import { Timeline } from "./Timeline";

function Budgets({ run }: { run: RunDetail }) {
  const { budget } = run;
  const elapsed = elapsedMs(run.started_at, run.finished_at) ?? 0;
  return (
    <section className="panel" aria-labelledby="budgets-title">
      <h2 id="budgets-title">Budgets</h2>
      <div className="gauges">
        <BudgetGauge label="Tokens" used={budget.tokens_used} cap={budget.token_cap} format={formatInteger} />
        <BudgetGauge
          label="Cost"
          used={toNumber(budget.cost_usd)}
          cap={budget.cost_cap_usd === null ? null : toNumber(budget.cost_cap_usd)}
          format={formatUsd}
        />
        <BudgetGauge
          label="Time"
          used={elapsed}
          cap={budget.max_duration_minutes === null ? null : budget.max_duration_minutes * 60000}
          format={formatDuration}
        />
        <BudgetGauge
          label="Phases complete"
          used={run.phases_complete}
          cap={run.phases_total}
          format={formatInteger}
          goal
        />
      </div>
    </section>
  );
}

function CancelButton({ run }: { run: RunDetail }) {
  const cancel = useCancelRun(run.run_id);
  const [confirming, setConfirming] = useState(false);
  if (!isActiveRun(run.state)) return null;
  return (
    <span className="inline-actions">
      {confirming ? (
        <>
          <span>Cancel this run? The phase in flight is stopped.</span>
          <button type="button" className="danger" onClick={() => cancel.mutate("cancelled from the dashboard")} disabled={cancel.isPending}>
            Yes, cancel run
          </button>
          <button type="button" onClick={() => setConfirming(false)}>
            Keep running
          </button>
        </>
      ) : (
        <button type="button" className="danger" onClick={() => setConfirming(true)}>
          Cancel run
        </button>
      )}
      <ActionError error={cancel.error} />
    </span>
  );
}

export default function RunDetailPage() {
  const { runId = "" } = useParams<{ runId: string }>();
  const run = useRun(runId);

  if (run.isPending) return <Loading what={`run ${runId}`} />;
  if (run.isError) {
    return (
      <section>
        <h1>Run {runId}</h1>
        <ErrorState error={run.error} retry={() => void run.refetch()} />
        <p>
          <Link href="/">Back to the runs</Link>
        </p>
      </section>
    );
  }
  const data = run.data;
  const active = isActiveRun(data.state);
  return (
    <section aria-labelledby="run-title" className="run-detail">
      <p className="breadcrumbs">
        <Link href="/">Runs</Link> / {data.run_id}
      </p>
      <div className="page-head">
        <h1 id="run-title">
          Run <code>{data.run_id}</code> <StateBadge state={data.state} />
        </h1>
        <div className="actions">
          <CancelButton run={data} />
          <PromoteButton run={data} />
        </div>
      </div>
      <p className="goal">{data.goal}</p>
      <dl className="facts">
        <div>
          <dt>Project</dt>
          <dd>{data.project}</dd>
        </div>
        <div>
          <dt>Safety</dt>
          <dd>{data.safety_profile}</dd>
        </div>
        <div>
          <dt>Branch</dt>
          <dd>
            <code>{data.integration_branch ?? "—"}</code>
          </dd>
        </div>
        <div>
          <dt>Base → head</dt>
          <dd>
            <code>{shortSha(data.base_commit)}</code> → <code>{shortSha(data.head_commit)}</code>
          </dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{formatDateTime(data.started_at)}</dd>
        </div>
        <div>
          <dt>Finished</dt>
          <dd>{formatDateTime(data.finished_at)}</dd>
        </div>
        <div>
          <dt>Test runs</dt>
          <dd>{data.ci_runs_used}</dd>
        </div>
        <div>
          <dt>Issues</dt>
          <dd>
            {data.major_issues_count} major, {data.minor_issues_count} minor
          </dd>
        </div>
      </dl>
      {data.failure_reason ? (
        <p className="failure" role="note">
          <strong>Why it stopped:</strong> {data.failure_reason}
        </p>
      ) : null}
      <ApprovalsPanel runId={data.run_id} blocked={data.state === "PAUSED" || data.tiers.some((t) => t.phases.some((p) => p.state === "BLOCKED"))} />
      <Budgets run={data} />
      <div className="detail-columns">
        <Timeline run={data} />
        <EventLog runId={data.run_id} active={active} />
      </div>
    </section>
  );
}
