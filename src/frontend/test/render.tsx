// Renders a page as the app does: a QueryClient (no retries, so errors show at once) and a
// router (wouter, on an in-memory location) at `route`. The current location is shown in
// `data-testid="location"`.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, screen, type RenderResult } from "@testing-library/react";
import type { ReactElement, ReactNode } from "react";
import { Route, Router, Switch, useLocation, useSearch } from "wouter";
import { memoryLocation } from "wouter/memory-location";

export function createTestQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { retry: false, gcTime: Infinity },
      mutations: { retry: false },
    },
  });
}

function LocationDisplay() {
  const [path] = useLocation();
  const search = useSearch();
  return <output data-testid="location">{search ? `${path}?${search}` : path}</output>;
}

export interface RenderOptions {
  /** The URL the router starts at, path and query (default "/"). */
  route?: string;
  /** The route pattern `ui` is mounted at; without one, `ui` shows wherever no other route matches. */
  path?: string;
  /** Other routes (wouter `<Route>`s), e.g. the page a form navigates to. */
  routes?: ReactNode;
  queryClient?: QueryClient;
}

export interface RenderWithProvidersResult extends RenderResult {
  queryClient: QueryClient;
  /** Every location the router went to, the first one included. */
  history: string[];
}

export function renderWithProviders(ui: ReactElement, options: RenderOptions = {}): RenderWithProvidersResult {
  const queryClient = options.queryClient ?? createTestQueryClient();
  const location = memoryLocation({ path: options.route ?? "/", record: true });
  const result = render(
    <QueryClientProvider client={queryClient}>
      <Router hook={location.hook} searchHook={location.searchHook}>
        <Switch>
          {options.path ? <Route path={options.path}>{ui}</Route> : null}
          {options.routes}
          {options.path ? null : <Route>{ui}</Route>}
        </Switch>
        <LocationDisplay />
      </Router>
    </QueryClientProvider>,
  );
  return { ...result, queryClient, history: location.history };
}

/** The router's current path and query string. */
export function currentLocation(): string {
  return screen.getByTestId("location").textContent ?? "";
}
