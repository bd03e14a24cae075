// System: is the server healthy, can it reach its database, is its schema current, are its
// executors working, what its vector memory holds, and which version is it.
import { useHealth, useReady } from "../api/queries";
import type { components } from "../api/schema";
import { ErrorState, Loading } from "../components/QueryState";

const EXECUTOR_MODES: Record<components["schemas"]["ExecutorHealth"]["mode"], string> = {
  in_process: "in-process executor",
  workers: "autopack worker processes",
  disabled: "not executing here",
};

function Status({ ok, text }: { ok: boolean; text: string }) {
  return <span className={`badge badge-${ok ? "success" : "danger"}`}>{text}</span>;
}

export default function SystemPage() {
  const health = useHealth();
  const ready = useReady();
  if (health.isPending) return <Loading what="system health" />;
  if (health.isError) {
    return (
      <section>
        <h1>System</h1>
        <ErrorState error={health.error} retry={() => void health.refetch()} />
      </section>
    );
  }
  const report = health.data;
  const database = report.database;
  const executor = report.executor;
  const memory = report.memory;
  return (
    <section aria-labelledby="system-title">
      <h1 id="system-title">System</h1>
      <div className="cards">
        <article className="panel" aria-labelledby="server-title">
          <h2 id="server-title">Server</h2>
          <dl className="facts">
            <div>
              <dt>Status</dt>
              <dd>
                <Status ok={report.status === "healthy"} text={report.status} />
              </dd>
            </div>
            <div>
              <dt>Version</dt>
              <dd>
                <code>{report.version}</code>
              </dd>
            </div>
          </dl>
        </article>
        <article className="panel" aria-labelledby="database-title">
          <h2 id="database-title">Database</h2>
          <dl className="facts">
            <div>
              <dt>Status</dt>
              <dd>
                <Status ok={database.status === "ok"} text={database.status} />
              </dd>
            </div>
            <div>
              <dt>Dialect</dt>
              <dd>{database.dialect}</dd>
            </div>
            <div>
              <dt>Round trip</dt>
              <dd>{database.latency_ms !== null && database.latency_ms !== undefined ? `${database.latency_ms} ms` : "—"}</dd>
            </div>
            <div>
              <dt>Schema</dt>
              <dd>
                {ready.data ? (
                  <>
                    <code>{ready.data.database.schema_revision ?? "none"}</code>
                    {ready.data.ready ? " (current)" : ` (expected ${ready.data.database.schema_head ?? "?"})`}
                  </>
                ) : (
                  "—"
                )}
              </dd>
            </div>
            {database.error ? (
              <div>
                <dt>Error</dt>
                <dd>{database.error}</dd>
              </div>
            ) : null}
          </dl>
        </article>
        <article className="panel" aria-labelledby="executor-title">
          <h2 id="executor-title">Workers</h2>
          <dl className="facts">
            <div>
              <dt>Mode</dt>
              <dd>{EXECUTOR_MODES[executor.mode]}</dd>
            </div>
            {executor.mode === "workers" ? (
              <>
                <div>
                  <dt>Workers alive</dt>
                  <dd>{executor.workers ?? "unknown"}</dd>
                </div>
                <div>
                  <dt>Runs executing</dt>
                  <dd>{executor.busy}</dd>
                </div>
                <div>
                  <dt>Runs waiting</dt>
                  <dd>{executor.waiting ?? "unknown"}</dd>
                </div>
              </>
            ) : (
              <>
                <div>
                  <dt>Threads</dt>
                  <dd>{executor.threads}</dd>
                </div>
                <div>
                  <dt>Busy</dt>
                  <dd>{executor.busy}</dd>
                </div>
              </>
            )}
          </dl>
        </article>
        {memory ? (
          <article className="panel" aria-labelledby="memory-title">
            <h2 id="memory-title">Memory</h2>
            <dl className="facts">
              <div>
                <dt>Mode</dt>
                <dd>{memory.mode === "server" ? "Qdrant server" : "embedded (local mode)"}</dd>
              </div>
              <div>
                <dt>Status</dt>
                <dd>
                  <Status ok={memory.status === "ok"} text={memory.status} />
                </dd>
              </div>
              {Object.entries(memory.collections).map(([name, size]) => (
                <div key={name}>
                  <dt>{name.replace(/^autopack_/, "")}</dt>
                  <dd>{size}</dd>
                </div>
              ))}
            </dl>
          </article>
        ) : null}
      </div>
    </section>
  );
}
