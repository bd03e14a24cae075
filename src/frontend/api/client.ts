// The one HTTP client: generated paths (all under /api, same origin), the API key header, and
// the API's one error envelope turned into ApiError.
import createClient, { type Middleware } from "openapi-fetch";

import { getApiKey, requestApiKey } from "./auth";
import type { paths } from "./schema";
import type { ErrorEnvelope } from "./types";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, details: unknown = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** The `Authorization` header for the stored key, if any (also used by the event stream). */
export function authHeaders(): Record<string, string> {
  const key = getApiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

const auth: Middleware = {
  onRequest({ request }) {
    for (const [name, value] of Object.entries(authHeaders())) request.headers.set(name, value);
    return request;
  },
  onResponse({ request, response }) {
    if (response.status === 401) {
      const sent = request.headers.get("Authorization");
      requestApiKey(sent ? sent.replace(/^Bearer /, "") : null);
    }
    return response;
  },
};

function isEnvelope(value: unknown): value is ErrorEnvelope {
  return (
    typeof value === "object" &&
    value !== null &&
    "error" in value &&
    typeof (value as { error: unknown }).error === "object"
  );
}

export function toApiError(status: number, body: unknown): ApiError {
  if (isEnvelope(body)) {
    const { code, message, details } = body.error;
    return new ApiError(status, code, message, details ?? null);
  }
  return new ApiError(status, "http_error", `The server answered ${status}`);
}

// baseUrl is the page's own origin: the generated paths already start with /api.
export const api = createClient<paths>({ baseUrl: "" });
api.use(auth);

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** The data of a successful response, or an ApiError carrying the server's envelope. */
export async function unwrap<T>(call: Promise<FetchResult<T>>): Promise<T> {
  let result: FetchResult<T>;
  try {
    result = await call;
  } catch (cause) {
    if (cause instanceof SyntaxError) {
      // A 2xx that is not JSON: something other than the API answered (an /api path routed to
      // the dashboard's index.html, say).
      throw new ApiError(0, "bad_response", "The server's answer was not the API's JSON: is /api routed to Autopack?", String(cause));
    }
    throw new ApiError(0, "network_error", "Cannot reach the Autopack server", String(cause));
  }
  if (!result.response.ok) throw toApiError(result.response.status, result.error);
  return result.data as T;
}
