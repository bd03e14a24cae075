// New run: paste or upload a plan (YAML or JSON), choose the project, submit. The server
// validates the plan; each problem it names is shown at its place (a field path, or a line).
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useId, useState, type ChangeEvent } from "react";
import { Link, useLocation } from "wouter";

import { ApiError, api, unwrap } from "../api/client";
import { useProjects } from "../api/queries";
import { errorMessage } from "../components/QueryState";

interface Problem {
  loc: string;
  message: string;
}

function problemsOf(error: unknown): Problem[] {
  if (!(error instanceof ApiError) || !Array.isArray(error.details)) return [];
  return error.details.flatMap((item: unknown) => {
    if (typeof item !== "object" || item === null) return [];
    const { loc, message } = item as { loc?: unknown; message?: unknown };
    return typeof message === "string" ? [{ loc: typeof loc === "string" ? loc : "", message }] : [];
  });
}

/** JSON starts with `{`; anything else is sent as YAML (a superset of JSON anyway). */
export function planContentType(text: string): "application/json" | "application/yaml" {
  return text.trimStart().startsWith("{") ? "application/json" : "application/yaml";
}

export default function NewRunPage() {
  const [, navigate] = useLocation();
  const client = useQueryClient();
  const projects = useProjects();
  const [plan, setPlan] = useState("");
  const [project, setProject] = useState("");
  const [fileError, setFileError] = useState<string | null>(null);
  const ids = { plan: useId(), planHelp: useId(), project: useId(), file: useId(), errors: useId() };

  const create = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/runs", {
          params: { query: { project: project || undefined } },
          // The plan goes as typed: JSON or YAML, parsed and validated by the server.
          body: plan as never,
          bodySerializer: (body: unknown) => body as string,
          headers: { "Content-Type": planContentType(plan) },
        }),
      ),
    onSuccess: (run) => {
      void client.invalidateQueries({ queryKey: ["runs"] });
      navigate(`/runs/${encodeURIComponent(run.run_id)}`);
    },
  });

  async function loadFile(event: ChangeEvent<HTMLInputElement>) {
    const file = event.target.files?.[0];
    if (!file) return;
    if (file.size > 2_000_000) {
      setFileError(`${file.name} is ${Math.round(file.size / 1000)} kB; a plan is at most 2 MB`);
      return;
    }
    setFileError(null);
    setPlan(await file.text());
  }

  const problems = create.isError ? problemsOf(create.error) : [];
  const projectProblems = problems.filter((problem) => problem.loc === "project");
  const planProblems = problems.filter((problem) => problem.loc !== "project");
  const unknownProject =
    create.error instanceof ApiError && create.error.status === 404 ? errorMessage(create.error) : null;

  return (
    <section aria-labelledby="new-run-title">
      <p className="breadcrumbs">
        <Link href="/">Runs</Link> / new
      </p>
      <h1 id="new-run-title">New run</h1>
      <form
        className="new-run"
        onSubmit={(event) => {
          event.preventDefault();
          if (plan.trim()) create.mutate();
        }}
      >
        <div className="field">
          <label htmlFor={ids.project}>Project</label>
          <select
            id={ids.project}
            value={project}
            onChange={(event) => setProject(event.target.value)}
            aria-invalid={projectProblems.length > 0 || unknownProject !== null}
            aria-describedby={projectProblems.length || unknownProject ? `${ids.project}-error` : undefined}
          >
            <option value="">As the plan says (or “default”)</option>
            {(projects.data ?? []).map((item) => (
              <option key={item.name} value={item.name}>
                {item.name}
                {item.repo ? ` — ${item.repo}` : ""}
              </option>
            ))}
          </select>
          {projectProblems.length || unknownProject ? (
            <p id={`${ids.project}-error`} className="form-error">
              {unknownProject ?? projectProblems.map((problem) => problem.message).join("; ")}
            </p>
          ) : null}
          {projects.isError ? <p className="form-error">Projects could not be listed: {errorMessage(projects.error)}</p> : null}
        </div>
        <div className="field">
          <label htmlFor={ids.file}>Upload a plan file</label>
          <input id={ids.file} type="file" accept=".yaml,.yml,.json,application/json,application/yaml" onChange={(event) => void loadFile(event)} />
          {fileError ? <p className="form-error">{fileError}</p> : null}
        </div>
        <div className="field">
          <label htmlFor={ids.plan}>Plan (YAML or JSON)</label>
          <p id={ids.planHelp} className="muted small">
            The format is in <code>docs/plans.md</code>; <code>autopack plan new</code> drafts one from an idea.
          </p>
          <textarea
            id={ids.plan}
            className="plan-editor"
            value={plan}
            onChange={(event) => setPlan(event.target.value)}
            spellCheck={false}
            rows={22}
            aria-invalid={planProblems.length > 0}
            aria-describedby={planProblems.length ? `${ids.planHelp} ${ids.errors}` : ids.planHelp}
          />
        </div>
        {create.isError && problems.length === 0 && !unknownProject ? (
          <p className="form-error" role="alert">
            {errorMessage(create.error)}
          </p>
        ) : null}
        {planProblems.length ? (
          <div id={ids.errors} className="problems" role="alert">
            <p>{errorMessage(create.error)}</p>
            <ul aria-label="Problems in the plan">
              {planProblems.map((problem, index) => (
                <li key={index}>
                  {problem.loc ? <code className="loc">{problem.loc}</code> : null} {problem.message}
                </li>
              ))}
            </ul>
          </div>
        ) : null}
        <div className="actions">
          <button type="submit" className="primary" disabled={!plan.trim() || create.isPending}>
            {create.isPending ? "Creating…" : "Create run"}
          </button>
        </div>
      </form>
    </section>
  );
}
