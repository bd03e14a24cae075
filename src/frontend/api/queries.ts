// TanStack Query hooks over the generated client: one per read, one per action. Query keys
// start with the resource name so that an action can invalidate exactly what it changed.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { api, unwrap } from "./client";
import type { RunState } from "./types";

/** How often lists of live things refresh themselves. */
export const LIVE_REFRESH_MS = 3000;

const ACTIVE_RUN_STATES: readonly RunState[] = ["QUEUED", "RUNNING", "PAUSED"];

export function isActiveRun(state: RunState): boolean {
  return ACTIVE_RUN_STATES.includes(state);
}

export interface RunFilter {
  state?: RunState | undefined;
  project?: string | undefined;
  limit?: number;
  offset?: number;
}

export function useRuns(filter: RunFilter) {
  return useQuery({
    queryKey: ["runs", filter],
    queryFn: () => unwrap(api.GET("/api/runs", { params: { query: filter } })),
    refetchInterval: LIVE_REFRESH_MS,
  });
}

export function useRun(runId: string) {
  return useQuery({
    queryKey: ["run", runId],
    queryFn: () => unwrap(api.GET("/api/runs/{run_id}", { params: { path: { run_id: runId } } })),
    // Events invalidate this while the stream is live; the interval is the fallback.
    refetchInterval: (query) =>
      query.state.data && isActiveRun(query.state.data.state) ? LIVE_REFRESH_MS * 2 : false,
  });
}

export function useProjects() {
  return useQuery({
    queryKey: ["projects"],
    queryFn: () => unwrap(api.GET("/api/projects")),
  });
}

export function useRunApprovals(runId: string, enabled: boolean) {
  return useQuery({
    queryKey: ["approvals", runId],
    enabled,
    queryFn: () =>
      unwrap(api.GET("/api/approvals", { params: { query: { status: "pending", run_id: runId, limit: 50 } } })),
    select: (page) => page.items,
    refetchInterval: LIVE_REFRESH_MS,
  });
}

export function useUsage() {
  return useQuery({
    queryKey: ["usage"],
    queryFn: () => unwrap(api.GET("/api/usage")),
    refetchInterval: LIVE_REFRESH_MS * 5,
  });
}

/**
 * `/health` and `/ready` answer 503 with the same report when something is down: that report is
 * what the System page shows, so it is data, not an error.
 */
async function report<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (data !== undefined) return data;
  if (response.status === 503 && error) return error as T;
  return unwrap(Promise.resolve({ data, error, response }));
}

export function useHealth() {
  return useQuery({
    queryKey: ["health"],
    queryFn: () => report(api.GET("/health")),
    refetchInterval: LIVE_REFRESH_MS * 3,
  });
}

export function useReady() {
  return useQuery({
    queryKey: ["ready"],
    queryFn: () => report(api.GET("/ready")),
    refetchInterval: LIVE_REFRESH_MS * 3,
  });
}

export function useCancelRun(runId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (reason: string | null) =>
      unwrap(
        api.POST("/api/runs/{run_id}/cancel", {
          params: { path: { run_id: runId } },
          body: { reason },
        }),
      ),
    onSuccess: (run) => {
      client.setQueryData(["run", runId], run);
      void client.invalidateQueries({ queryKey: ["runs"] });
    },
  });
}

export function useRetryPhase(runId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: (phaseId: string) =>
      unwrap(
        api.POST("/api/runs/{run_id}/phases/{phase_id}/retry", {
          params: { path: { run_id: runId, phase_id: phaseId } },
        }),
      ),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: ["run", runId] });
      void client.invalidateQueries({ queryKey: ["runs"] });
    },
  });
}

export function useDecideApproval(runId: string) {
  const client = useQueryClient();
  return useMutation({
    mutationFn: ({ id, approve, reason }: { id: number; approve: boolean; reason: string }) =>
      unwrap(
        approve
          ? api.POST("/api/approvals/{approval_id}/approve", {
              params: { path: { approval_id: id } },
              body: { reason },
            })
          : api.POST("/api/approvals/{approval_id}/reject", {
              params: { path: { approval_id: id } },
              body: { reason },
            }),
      ),
    onSuccess: () => {
      void client.invalidateQueries({ queryKey: ["approvals", runId] });
      void client.invalidateQueries({ queryKey: ["run", runId] });
    },
  });
}
