import { QueryClientProvider, useQuery } from "@tanstack/react-query";
import { act, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it, vi } from "vitest";

import { getApiKey, keyPromptState, requestApiKey, resetAuthForTests } from "../api/auth";
import { createTestQueryClient } from "../test/render";
import { KeyPrompt } from "./KeyPrompt";

function Data({ load }: { load: () => Promise<string> }) {
  const query = useQuery({ queryKey: ["something"], queryFn: load });
  return <p>{query.data ?? "loading"}</p>;
}

function renderPrompt() {
  const load = vi.fn(async () => `loaded with ${getApiKey() ?? "no key"}`);
  const client = createTestQueryClient();
  render(
    <QueryClientProvider client={client}>
      <Data load={load} />
      <KeyPrompt />
    </QueryClientProvider>,
  );
  return { load };
}

beforeEach(() => {
  resetAuthForTests();
});

describe("KeyPrompt", () => {
  it("stays closed until a key is asked for", async () => {
    renderPrompt();

    await screen.findByText("loaded with no key");
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();
    expect(screen.queryByRole("heading", { name: "API key needed" })).not.toBeInTheDocument();
  });

  it("asks for a key, stores it, closes and reloads the data", async () => {
    const user = userEvent.setup();
    const { load } = renderPrompt();
    await screen.findByText("loaded with no key");
    expect(load).toHaveBeenCalledTimes(1);

    act(() => requestApiKey(null));

    const dialog = await screen.findByRole("dialog", { name: "API key needed" });
    expect(dialog).toHaveAttribute("open");
    // A missing key is not a refused one.
    expect(screen.queryByText(/refused that key/)).not.toBeInTheDocument();
    const input = screen.getByLabelText("API key");
    expect(input).toHaveAttribute("type", "password");
    const submit = screen.getByRole("button", { name: "Use this key" });
    expect(submit).toBeDisabled();

    await user.type(input, "  sk-new-key ");
    await user.click(submit);

    expect(getApiKey()).toBe("sk-new-key");
    expect(window.sessionStorage.getItem("autopack.apiKey")).toBe("sk-new-key");
    expect(keyPromptState().open).toBe(false);
    await waitFor(() => expect(screen.queryByRole("dialog")).not.toBeInTheDocument());
    // Every query is invalidated: the data is fetched again, now with the key.
    expect(await screen.findByText("loaded with sk-new-key")).toBeInTheDocument();
    expect(load).toHaveBeenCalledTimes(2);
  });

  it("says so when the key given was refused", async () => {
    renderPrompt();

    act(() => requestApiKey("old"));

    await screen.findByRole("dialog", { name: "API key needed" });
    expect(screen.getByRole("alert")).toHaveTextContent("The server refused that key (unknown or revoked)");
  });
});
