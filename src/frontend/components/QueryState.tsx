// Loading, empty and error states, the same on every page.
import type { ReactNode } from "react";

import { ApiError } from "../api/client";

export function Loading({ what }: { what: string }) {
  return (
    <p className="state state-loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="state state-empty">{children}</div>;
}

export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.status === 401) return "An API key is needed to see this.";
    if (error.status === 403) return "Your API key's scope does not allow this.";
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Why an action (a button's request) failed, next to the button; nothing when it did not. */
export function ActionError({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  return (
    <span className="form-error" role="alert">
      {errorMessage(error)}
    </span>
  );
}

export function ErrorState({ error, retry }: { error: unknown; retry?: () => void }) {
  return (
    <div className="state state-error" role="alert">
      <p>{errorMessage(error)}</p>
      {retry ? (
        <button type="button" onClick={retry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}
