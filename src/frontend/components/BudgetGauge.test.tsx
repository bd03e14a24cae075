import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { BudgetGauge } from "./BudgetGauge";
import { formatInteger } from "./format";

describe("BudgetGauge", () => {
  it("shows a meter named '<label> used' with the amount and the cap", () => {
    const { container } = render(<BudgetGauge label="Tokens" used={1200} cap={5000} format={formatInteger} />);

    const meter = screen.getByRole("meter", { name: "Tokens used" });
    expect(meter).toHaveAttribute("value", "1200");
    expect(meter).toHaveAttribute("max", "5000");
    expect(meter).toHaveAttribute("min", "0");
    expect(container.textContent).toContain("1,200 of 5,000");
    expect(container.firstElementChild).toHaveClass("gauge", "gauge-ok");
  });

  it("marks a budget close to its cap as high", () => {
    const { container } = render(<BudgetGauge label="Tokens" used={4500} cap={5000} format={formatInteger} />);
    expect(container.firstElementChild).toHaveClass("gauge-high");
  });

  it("clamps the meter at the cap when the budget is overrun, and marks it over", () => {
    const { container } = render(<BudgetGauge label="Cost" used={7} cap={5} format={(v) => `$${v}`} />);

    const meter = screen.getByRole("meter", { name: "Cost used" });
    expect(meter).toHaveAttribute("value", "5");
    expect(meter).toHaveAttribute("max", "5");
    expect(container.firstElementChild).toHaveClass("gauge-over");
    // The figures still say how much was really spent.
    expect(container.textContent).toContain("$7 of $5");
  });

  it("marks a budget used up exactly as over", () => {
    const { container } = render(<BudgetGauge label="Tokens" used={5000} cap={5000} format={formatInteger} />);
    expect(container.firstElementChild).toHaveClass("gauge-over");
  });

  it.each([null, undefined, 0])("without a cap (%s) says so and has no meter", (cap) => {
    const { container } = render(<BudgetGauge label="Tokens" used={1200} cap={cap} format={formatInteger} />);

    expect(screen.queryByRole("meter")).not.toBeInTheDocument();
    expect(container.textContent).toContain("1,200 (no cap)");
    expect(container.firstElementChild).toHaveClass("gauge-uncapped");
  });

  it("shows progress toward a goal (phases complete) as done, not as a budget overrun", () => {
    const { container } = render(<BudgetGauge label="Phases complete" used={4} cap={4} format={formatInteger} goal />);
    const bar = screen.getByRole("progressbar", { name: "Phases complete" });
    expect(bar).toHaveAttribute("value", "4");
    expect(bar).toHaveAttribute("max", "4");
    expect(screen.queryByRole("meter")).not.toBeInTheDocument();
    expect(container.firstElementChild).not.toHaveClass("gauge-over");
  });
});
