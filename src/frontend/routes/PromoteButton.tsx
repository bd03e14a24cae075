// Promotion: merge a DONE_SUCCESS run whose tiers are all clean into the project's branch.
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";

import { api, unwrap } from "../api/client";
import type { RunDetail } from "../api/types";
import { ActionError } from "../components/QueryState";

export function PromoteButton({ run }: { run: RunDetail }) {
  const client = useQueryClient();
  const [branch, setBranch] = useState("");
  const promote = useMutation({
    mutationFn: () =>
      unwrap(
        api.POST("/api/runs/{run_id}/promote", {
          params: { path: { run_id: run.run_id } },
          body: { branch: branch.trim() || null },
        }),
      ),
    onSuccess: () => void client.invalidateQueries({ queryKey: ["run", run.run_id] }),
  });
  if (!run.promotable) return null;
  return (
    <form
      className="inline-actions"
      onSubmit={(event) => {
        event.preventDefault();
        promote.mutate();
      }}
    >
      <label>
        Target branch
        <input value={branch} onChange={(event) => setBranch(event.target.value)} placeholder="project default" />
      </label>
      <button type="submit" className="primary" disabled={promote.isPending}>
        Promote
      </button>
      {promote.isSuccess ? (
        <span role="status">
          Promoted to <code>{promote.data.branch}</code> at <code>{promote.data.commit.slice(0, 10)}</code>
        </span>
      ) : null}
      <ActionError error={promote.error} />
    </form>
  );
}
