// Filters and pages kept in the address's query string, so that a reload or a shared link
// shows the same view.
import { useSearchParams } from "wouter";

export type SetUrlParam = (name: string, value: string, options?: { reset?: string[] }) => void;

/** The query string, and a setter for one parameter (an empty value removes it; `reset`
 * removes others, such as the page offset when a filter changes). */
export function useUrlParams(): readonly [URLSearchParams, SetUrlParam] {
  const [params, setParams] = useSearchParams();
  const set: SetUrlParam = (name, value, options = {}) => {
    const next = new URLSearchParams(params);
    if (value) next.set(name, value);
    else next.delete(name);
    for (const other of options.reset ?? []) next.delete(other);
    setParams(next);
  };
  return [params, set] as const;
}
