// Runs: every run with its state, progress and spend against its caps; filters live in the URL
// so a reload or a shared link shows the same list. Refreshes itself while it is open.
import { Link } from "wouter";

import { RUN_STATES } from "../api/enums";
import { useProjects, useRuns } from "../api/queries";
import type { RunState, RunSummary } from "../api/types";
import {
  elapsedMs,
  formatDateTime,
  formatDuration,
  formatTokens,
  formatUsd,
} from "../components/format";
import { Empty, ErrorState, Loading } from "../components/QueryState";
import { StateBadge } from "../components/StateBadge";
import { useUrlParams } from "../components/useUrlParams";

const PAGE_SIZE = 50;

function isRunState(value: string | null): value is RunState {
  return RUN_STATES.some((state) => state === value);
}

function Spend({ used, cap, format }: { used: string; cap: string | null; format: (v: string) => string }) {
  return (
    <>
      {format(used)}
      {cap !== null ? <span className="muted"> / {format(cap)}</span> : null}
    </>
  );
}

function RunRow({ run }: { run: RunSummary }) {
  const duration = elapsedMs(run.started_at, run.finished_at);
  const { budget } = run;
  return (
    <tr>
      <td>
        <Link href={`/runs/${encodeURIComponent(run.run_id)}`}>{run.run_id}</Link>
        <div className="muted small clamp">{run.goal}</div>
      </td>
      <td>
        <StateBadge state={run.state} />
      </td>
      <td>{run.project}</td>
      <td className="num">
        {run.phases_complete}/{run.phases_total}
      </td>
      <td className="num">
        <Spend
          used={String(budget.tokens_used)}
          cap={budget.token_cap === null ? null : String(budget.token_cap)}
          format={(value) => formatTokens(Number(value))}
        />
      </td>
      <td className="num">
        <Spend used={budget.cost_usd} cap={budget.cost_cap_usd} format={formatUsd} />
      </td>
      <td>{formatDateTime(run.started_at ?? run.created_at)}</td>
      <td className="num">{duration === null ? "—" : formatDuration(duration)}</td>
    </tr>
  );
}

export function RunsPage() {
  const [params, setParam] = useUrlParams();
  const stateParam = params.get("state");
  const state = isRunState(stateParam) ? stateParam : undefined;
  const project = params.get("project") || undefined;
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const runs = useRuns({ state, project, limit: PAGE_SIZE, offset });
  const projects = useProjects();

  // A new filter starts again from the newest run.
  const update = (name: string, value: string) => setParam(name, value, { reset: name === "offset" ? [] : ["offset"] });

  const total = runs.data?.total ?? 0;
  return (
    <section aria-labelledby="runs-title">
      <div className="page-head">
        <h1 id="runs-title">Runs</h1>
        <Link className="button primary" href="/runs/new">
          New run
        </Link>
      </div>
      <form className="filters" role="search" aria-label="Filter runs" onSubmit={(e) => e.preventDefault()}>
        <label>
          State
          <select value={state ?? ""} onChange={(event) => update("state", event.target.value)}>
            <option value="">All states</option>
            {RUN_STATES.map((value) => (
              <option key={value} value={value}>
                {value.replaceAll("_", " ")}
              </option>
            ))}
          </select>
        </label>
        <label>
          Project
          <select value={project ?? ""} onChange={(event) => update("project", event.target.value)}>
            <option value="">All projects</option>
            {(projects.data ?? []).map((item) => (
              <option key={item.name} value={item.name}>
                {item.name}
              </option>
            ))}
            {project && !projects.data?.some((item) => item.name === project) ? (
              <option value={project}>{project}</option>
            ) : null}
          </select>
        </label>
        <span className="live-note muted small" aria-live="off">
          {runs.isFetching ? "Refreshing…" : "Live: refreshes every few seconds"}
        </span>
      </form>
      {runs.isPending ? (
        <Loading what="runs" />
      ) : runs.isError ? (
        <ErrorState error={runs.error} retry={() => void runs.refetch()} />
      ) : runs.data.items.length === 0 ? (
        <Empty>
          {state || project ? (
            <p>No run matches these filters.</p>
          ) : (
            <p>
              No runs yet. <Link href="/runs/new">Start one from a plan</Link>, or run{" "}
              <code>autopack demo</code>.
            </p>
          )}
        </Empty>
      ) : (
        <>
          <div className="table-scroll">
            <table className="runs-table">
              <caption className="visually-hidden">Runs, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Run</th>
                  <th scope="col">State</th>
                  <th scope="col">Project</th>
                  <th scope="col" className="num">Phases</th>
                  <th scope="col" className="num">Tokens / cap</th>
                  <th scope="col" className="num">Cost / cap</th>
                  <th scope="col">Started</th>
                  <th scope="col" className="num">Duration</th>
                </tr>
              </thead>
              <tbody>
                {runs.data.items.map((run) => (
                  <RunRow key={run.run_id} run={run} />
                ))}
              </tbody>
            </table>
          </div>
          <nav className="pager" aria-label="Pages of runs">
            <span className="muted">
              {offset + 1}–{offset + runs.data.items.length} of {total}
            </span>
            <button type="button" disabled={offset === 0} onClick={() => update("offset", String(Math.max(0, offset - PAGE_SIZE)))}>
              Newer
            </button>
            <button type="button" disabled={offset + PAGE_SIZE >= total} onClick={() => update("offset", String(offset + PAGE_SIZE))}>
              Older
            </button>
          </nav>
        </>
      )}
    </section>
  );
}
