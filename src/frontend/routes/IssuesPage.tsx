// The issues backlog (what keeps going wrong, how often, since when) and the learned rules
// distilled from it, which a person approves or retires.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, unwrap } from "../api/client";
import { ISSUE_SEVERITIES, ISSUE_STATUSES } from "../api/enums";
import { LIVE_REFRESH_MS, useProjects } from "../api/queries";
import type { RuleRead } from "../api/types";
import { formatDateTime } from "../components/format";
import { ActionError, Empty, ErrorState, Loading } from "../components/QueryState";
import { useUrlParams } from "../components/useUrlParams";

function pick<T extends string>(value: string | null, allowed: readonly T[]): T | undefined {
  return allowed.find((item) => item === value);
}

function Backlog({ project }: { project: string | undefined }) {
  const [params, update] = useUrlParams();
  const status = pick(params.get("status"), ISSUE_STATUSES);
  const severity = pick(params.get("severity"), ISSUE_SEVERITIES);
  const issues = useQuery({
    queryKey: ["issues", { project, status, severity }],
    queryFn: () => unwrap(api.GET("/api/issues", { params: { query: { project, status, severity, limit: 200 } } })),
    refetchInterval: LIVE_REFRESH_MS * 5,
  });
  return (
    <section className="panel" aria-labelledby="backlog-title">
      <h2 id="backlog-title">Issues backlog</h2>
      <form className="filters" aria-label="Filter issues" onSubmit={(e) => e.preventDefault()}>
        <label>
          Status
          <select value={status ?? ""} onChange={(event) => update("status", event.target.value)}>
            <option value="">Any status</option>
            {ISSUE_STATUSES.map((value) => (
              <option key={value} value={value}>
                {value.replace("_", " ")}
              </option>
            ))}
          </select>
        </label>
        <label>
          Severity
          <select value={severity ?? ""} onChange={(event) => update("severity", event.target.value)}>
            <option value="">Any severity</option>
            {ISSUE_SEVERITIES.map((value) => (
              <option key={value} value={value}>
                {value}
              </option>
            ))}
          </select>
        </label>
      </form>
      {issues.isPending ? (
        <Loading what="issues" />
      ) : issues.isError ? (
        <ErrorState error={issues.error} retry={() => void issues.refetch()} />
      ) : issues.data.items.length === 0 ? (
        <Empty>
          <p>No issues{status || severity || project ? " match these filters" : " recorded yet"}.</p>
        </Empty>
      ) : (
        <div className="table-scroll">
          <table>
            <caption className="visually-hidden">Issues, most severe first</caption>
            <thead>
              <tr>
                <th scope="col">Issue</th>
                <th scope="col">Project</th>
                <th scope="col">Severity</th>
                <th scope="col">Source</th>
                <th scope="col" className="num">Occurrences</th>
                <th scope="col" className="num">Age (runs)</th>
                <th scope="col">Status</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {issues.data.items.map((issue) => (
                <tr key={`${issue.project}:${issue.issue_key}`}>
                  <td>
                    {issue.title}
                    <div className="muted small">
                      <code>{issue.issue_key}</code>
                    </div>
                  </td>
                  <td>{issue.project}</td>
                  <td>
                    <span className={`badge severity-${issue.severity}`}>{issue.severity}</span>
                  </td>
                  <td>{issue.source}</td>
                  <td className="num">{issue.occurrence_count}</td>
                  <td className="num">{issue.age_in_runs}</td>
                  <td>{issue.status.replace("_", " ")}</td>
                  <td>
                    {issue.last_seen_run_id ?? "—"}
                    <div className="muted small">{formatDateTime(issue.updated_at)}</div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function RuleActions({ rule }: { rule: RuleRead }) {
  const client = useQueryClient();
  const change = useMutation({
    mutationFn: (action: "approve" | "retire") =>
      unwrap(
        action === "approve"
          ? api.POST("/api/rules/{rule_id}/approve", { params: { path: { rule_id: rule.id } }, body: {} })
          : api.POST("/api/rules/{rule_id}/retire", { params: { path: { rule_id: rule.id } }, body: {} }),
      ),
    onSuccess: () => void client.invalidateQueries({ queryKey: ["rules"] }),
  });
  return (
    <div className="inline-actions">
      {rule.stage === "hint" || rule.stage === "candidate" ? (
        <button type="button" className="primary" disabled={change.isPending} onClick={() => change.mutate("approve")} aria-label={`Approve rule ${rule.id}`}>
          Approve
        </button>
      ) : null}
      {rule.stage !== "retired" ? (
        <button type="button" disabled={change.isPending} onClick={() => change.mutate("retire")} aria-label={`Retire rule ${rule.id}`}>
          Retire
        </button>
      ) : null}
      <ActionError error={change.error} />
    </div>
  );
}

function Rules({ project }: { project: string | undefined }) {
  const rules = useQuery({
    queryKey: ["rules", project],
    queryFn: () => unwrap(api.GET("/api/rules", { params: { query: { project, limit: 200 } } })),
  });
  return (
    <section className="panel" aria-labelledby="rules-title">
      <h2 id="rules-title">Learned rules</h2>
      <p className="muted small">
        A failure a run fixed is a hint; when another run fixes it again it becomes a candidate. Only active rules reach the
        builder's prompt, for the phases they match: approve a hint or candidate to activate it (or let confirmations do
        it, if the server is set to). A rule whose failure keeps coming back is retired.
      </p>
      {rules.isPending ? (
        <Loading what="rules" />
      ) : rules.isError ? (
        <ErrorState error={rules.error} retry={() => void rules.refetch()} />
      ) : rules.data.items.length === 0 ? (
        <Empty>
          <p>No learned rules yet: they come from failures that a later attempt fixed.</p>
        </Empty>
      ) : (
        <div className="table-scroll">
          <table>
            <caption className="visually-hidden">Learned rules</caption>
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">Stage</th>
                <th scope="col">Applies to</th>
                <th scope="col">Evidence</th>
                <th scope="col" className="num">Hits / misses</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {rules.data.items.map((rule) => (
                <tr key={rule.id}>
                  <td>{rule.text}</td>
                  <td>
                    <span className={`badge stage-${rule.stage}`}>{rule.stage}</span>
                  </td>
                  <td className="small">
                    {rule.project ?? "all projects"}
                    {rule.scope_pattern ? (
                      <div>
                        <code>{rule.scope_pattern}</code>
                      </div>
                    ) : null}
                    {rule.task_categories.length ? <div>{rule.task_categories.join(", ")}</div> : null}
                  </td>
                  <td className="small">
                    {rule.evidence_issue_keys.map((key) => (
                      <div key={String(key)}>
                        <code>{String(key)}</code>
                      </div>
                    ))}
                    {rule.learned_from_runs.length ? (
                      <div>
                        fixed in {rule.learned_from_runs.length} run{rule.learned_from_runs.length === 1 ? "" : "s"}
                        {rule.confirmations ? `, ${rule.confirmations} confirmation${rule.confirmations === 1 ? "" : "s"}` : ""}
                      </div>
                    ) : null}
                    {rule.stage_reason ? <div className="muted">{rule.stage_reason}</div> : null}
                  </td>
                  <td className="num">
                    {rule.hit_count} / {rule.miss_count}
                  </td>
                  <td>
                    <RuleActions rule={rule} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export default function IssuesPage() {
  const [params, setParam] = useUrlParams();
  const projects = useProjects();
  const project = params.get("project") || undefined;
  return (
    <section aria-labelledby="issues-title">
      <div className="page-head">
        <h1 id="issues-title">Issues and learned rules</h1>
        <label className="inline-label">
          Project
          <select
            value={project ?? ""}
            onChange={(event) => setParam("project", event.target.value)}
          >
            <option value="">All projects</option>
            {(projects.data ?? []).map((item) => (
              <option key={item.name} value={item.name}>
                {item.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      <Backlog project={project} />
      <Rules project={project} />
    </section>
  );
}
