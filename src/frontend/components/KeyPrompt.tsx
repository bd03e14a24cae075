// Asks for an API key when the API answers 401. The key goes to sessionStorage only.
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState, useSyncExternalStore } from "react";

import { keyPromptState, setApiKey, subscribeAuth } from "../api/auth";

let cached = keyPromptState();
function snapshot() {
  const next = keyPromptState();
  if (next.open !== cached.open || next.rejected !== cached.rejected) cached = next;
  return cached;
}

export function KeyPrompt() {
  const state = useSyncExternalStore(subscribeAuth, snapshot);
  const client = useQueryClient();
  const [key, setKey] = useState("");
  const dialog = useRef<HTMLDialogElement>(null);

  useEffect(() => {
    const element = dialog.current;
    if (!element) return;
    if (state.open && !element.open) {
      // showModal traps focus in the dialog; jsdom lacks it, so fall back to the attribute.
      if (typeof element.showModal === "function") element.showModal();
      else element.setAttribute("open", "");
    } else if (!state.open && element.open) {
      element.close?.();
      element.removeAttribute("open");
    }
  }, [state.open]);

  if (!state.open) return <dialog ref={dialog} className="key-prompt" aria-label="API key" />;

  return (
    <dialog
      ref={dialog}
      className="key-prompt"
      aria-labelledby="key-prompt-title"
      onCancel={(event) => event.preventDefault()}
    >
      <form
        method="dialog"
        onSubmit={(event) => {
          event.preventDefault();
          if (!key.trim()) return;
          setApiKey(key);
          setKey("");
          void client.invalidateQueries();
        }}
      >
        <h2 id="key-prompt-title">API key needed</h2>
        <p>
          This Autopack server requires an API key. Create one with{" "}
          <code>autopack keys create NAME</code>. It is kept in this tab only (sessionStorage).
        </p>
        {state.rejected ? (
          <p className="form-error" role="alert">
            The server refused that key (unknown or revoked). Enter another.
          </p>
        ) : null}
        <label htmlFor="api-key-input">API key</label>
        <input
          id="api-key-input"
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={key}
          onChange={(event) => setKey(event.target.value)}
          autoFocus
        />
        <div className="actions">
          <button type="submit" className="primary" disabled={!key.trim()}>
            Use this key
          </button>
        </div>
      </form>
    </dialog>
  );
}
