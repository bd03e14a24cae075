// Tiers and their phases in execution order, each with its state; a phase opens to show its
// attempts. A failed phase can be retried from here.
import { useState } from "react";

import { useRetryPhase } from "../api/queries";
import type { PhaseRead, RunDetail } from "../api/types";
import { elapsedMs, formatDuration, formatInteger, formatUsd, shortSha } from "../components/format";
import { ActionError } from "../components/QueryState";
import { StateBadge } from "../components/StateBadge";
import { PhaseAttempts } from "./PhaseAttempts";

function RetryButton({ runId, phase }: { runId: string; phase: PhaseRead }) {
  const retry = useRetryPhase(runId);
  if (phase.state !== "FAILED") return null;
  return (
    <>
      <button
        type="button"
        onClick={() => retry.mutate(phase.phase_id)}
        disabled={retry.isPending}
        aria-label={`Retry phase ${phase.phase_id}`}
      >
        {retry.isPending ? "Retrying…" : "Retry phase"}
      </button>
      <ActionError error={retry.error} />
    </>
  );
}

function PhaseItem({ runId, phase }: { runId: string; phase: PhaseRead }) {
  const [open, setOpen] = useState(false);
  const duration = elapsedMs(phase.started_at, phase.finished_at);
  const panelId = `attempts-${phase.phase_id}`;
  return (
    <li className={`phase phase-${phase.state.toLowerCase()}`} data-phase-id={phase.phase_id}>
      <div className="phase-row">
        <button
          type="button"
          className="disclosure"
          aria-expanded={open}
          aria-controls={panelId}
          onClick={() => setOpen(!open)}
        >
          <span aria-hidden="true">{open ? "▾" : "▸"}</span> {phase.name}
        </button>
        <StateBadge state={phase.state} />
        <span className="muted small">
          {phase.attempts_count} attempt{phase.attempts_count === 1 ? "" : "s"}
          {phase.max_attempts ? ` of ${phase.max_attempts}` : ""} · {formatInteger(phase.tokens_used)} tokens ·{" "}
          {formatUsd(phase.cost_usd)}
          {duration !== null ? ` · ${formatDuration(duration)}` : ""}
          {phase.commit_sha ? (
            <>
              {" "}
              · commit <code>{shortSha(phase.commit_sha)}</code>
            </>
          ) : null}
        </span>
        <RetryButton runId={runId} phase={phase} />
      </div>
      {phase.failure_reason ? <p className="failure small">{phase.failure_reason}</p> : null}
      {open ? (
        <div id={panelId} className="phase-details">
          <p className="muted small">
            <code>{phase.phase_id}</code> · {phase.task_category ?? "no category"} · complexity {phase.complexity}
          </p>
          <p>{phase.description}</p>
          <PhaseAttempts runId={runId} phaseId={phase.phase_id} />
        </div>
      ) : null}
    </li>
  );
}

export function Timeline({ run }: { run: RunDetail }) {
  return (
    <section className="panel" aria-labelledby="timeline-title">
      <h2 id="timeline-title">Tiers and phases</h2>
      <ol className="timeline">
        {run.tiers.map((tier) => (
          <li key={tier.tier_id} className="tier">
            <div className="tier-head">
              <h3>{tier.name}</h3>
              <StateBadge state={tier.state} />
              <span className={`cleanliness cleanliness-${tier.cleanliness}`}>{tier.cleanliness.replace("_", " ")}</span>
            </div>
            <ol className="phases">
              {tier.phases.map((phase) => (
                <PhaseItem key={phase.phase_id} runId={run.run_id} phase={phase} />
              ))}
            </ol>
          </li>
        ))}
      </ol>
    </section>
  );
}
