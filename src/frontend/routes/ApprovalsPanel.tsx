// Approvals this run is waiting for: what is asked, and approve/reject with a reason.
import { useState } from "react";

import { useDecideApproval, useRunApprovals } from "../api/queries";
import type { ApprovalRead } from "../api/types";
import { DiffView } from "../components/DiffView";
import { formatDateTime } from "../components/format";
import { ActionError } from "../components/QueryState";

function ApprovalCard({ runId, approval }: { runId: string; approval: ApprovalRead }) {
  const decide = useDecideApproval(runId);
  const [reason, setReason] = useState("");
  const subject = approval.subject as Record<string, unknown>;
  const diff = typeof subject.diff === "string" ? subject.diff : null;
  const inputId = `approval-reason-${approval.id}`;
  return (
    <article className="approval" aria-label={`Approval ${approval.id}`}>
      <h3>
        {approval.kind.replaceAll("_", " ")} {approval.phase_id ? <>in phase <code>{approval.phase_id}</code></> : null}
      </h3>
      {typeof subject.why === "string" ? <p>{subject.why}</p> : null}
      {approval.expires_at ? <p className="muted small">Decided automatically after {formatDateTime(approval.expires_at)}</p> : null}
      {diff ? <DiffView diff={diff} /> : <pre className="json">{JSON.stringify(subject, null, 2)}</pre>}
      <form
        onSubmit={(event) => {
          event.preventDefault();
        }}
      >
        <label htmlFor={inputId}>Reason (recorded with the decision)</label>
        <input id={inputId} value={reason} onChange={(event) => setReason(event.target.value)} required />
        <div className="actions">
          <button
            type="button"
            className="primary"
            disabled={!reason.trim() || decide.isPending}
            onClick={() => decide.mutate({ id: approval.id, approve: true, reason })}
          >
            Approve
          </button>
          <button
            type="button"
            className="danger"
            disabled={!reason.trim() || decide.isPending}
            onClick={() => decide.mutate({ id: approval.id, approve: false, reason })}
          >
            Reject
          </button>
        </div>
        <ActionError error={decide.error} />
      </form>
    </article>
  );
}

export function ApprovalsPanel({ runId, blocked }: { runId: string; blocked: boolean }) {
  const approvals = useRunApprovals(runId, blocked);
  if (!blocked || !approvals.data || approvals.data.length === 0) return null;
  return (
    <section className="panel panel-attention" aria-labelledby="approvals-title">
      <h2 id="approvals-title">Waiting for your decision</h2>
      {approvals.data.map((approval) => (
        <ApprovalCard key={approval.id} runId={runId} approval={approval} />
      ))}
    </section>
  );
}
