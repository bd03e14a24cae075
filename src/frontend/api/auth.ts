// The API key the dashboard sends, kept in sessionStorage: it lasts as long as the tab and is
// never part of the bundle. A 401 from the API asks the user for one (see KeyPrompt).

const STORAGE_KEY = "autopack.apiKey";

type Listener = () => void;

let keyRequested = false;
let rejectedKey: string | null = null;
const listeners = new Set<Listener>();

function notify(): void {
  for (const listener of listeners) listener();
}

export function getApiKey(): string | null {
  try {
    return window.sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage disabled: behave as if no key was given
  }
}

export function setApiKey(key: string): void {
  window.sessionStorage.setItem(STORAGE_KEY, key.trim());
  keyRequested = false;
  rejectedKey = null;
  notify();
}

/** Called when the API answered 401 to a request that carried `sentKey` (or none). */
export function requestApiKey(sentKey: string | null): void {
  rejectedKey = sentKey;
  if (!keyRequested) {
    keyRequested = true;
    notify();
  }
}

export interface KeyPromptState {
  open: boolean;
  /** True when the key the user gave was refused (unknown or revoked), not merely missing. */
  rejected: boolean;
}

export function keyPromptState(): KeyPromptState {
  return { open: keyRequested, rejected: keyRequested && rejectedKey !== null };
}

export function subscribeAuth(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Test hook: forget everything. */
export function resetAuthForTests(): void {
  keyRequested = false;
  rejectedKey = null;
  listeners.clear();
}
