// The page frame and the client-side routes. The runs list is the first page and ships in the
// initial bundle; every other page is its own chunk, loaded when first visited.
import { lazy, Suspense } from "react";
import { Link, Route, Switch, useRoute } from "wouter";

import { KeyPrompt } from "./components/KeyPrompt";
import { Loading } from "./components/QueryState";
import { RunsPage } from "./routes/RunsPage";

const RunDetailPage = lazy(() => import("./routes/RunDetailPage"));
const NewRunPage = lazy(() => import("./routes/NewRunPage"));
const IssuesPage = lazy(() => import("./routes/IssuesPage"));
const UsagePage = lazy(() => import("./routes/UsagePage"));
const SystemPage = lazy(() => import("./routes/SystemPage"));
const NotFoundPage = lazy(() => import("./routes/NotFoundPage"));

const NAV = [
  { to: "/", label: "Runs", also: "/runs/:runId" },
  { to: "/runs/new", label: "New run" },
  { to: "/issues", label: "Issues & rules" },
  { to: "/usage", label: "Usage" },
  { to: "/system", label: "System" },
];

function NavItem({ to, label, also }: { to: string; label: string; also?: string }) {
  const [exact] = useRoute(to);
  const [related, params] = useRoute<{ runId: string }>(also ?? "/__never__");
  const active = exact || (related && params.runId !== "new");
  return (
    <Link href={to} className={active ? "active" : undefined} aria-current={active ? "page" : undefined}>
      {label}
    </Link>
  );
}

export function App() {
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <span className="brand">Autopack</span>
        <nav aria-label="Main">
          <ul>
            {NAV.map((item) => (
              <li key={item.to}>
                <NavItem {...item} />
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<Loading what="page" />}>
          <Switch>
            <Route path="/" component={RunsPage} />
            <Route path="/runs" component={RunsPage} />
            <Route path="/runs/new" component={NewRunPage} />
            <Route path="/runs/:runId" component={RunDetailPage} />
            <Route path="/issues" component={IssuesPage} />
            <Route path="/usage" component={UsagePage} />
            <Route path="/system" component={SystemPage} />
            <Route component={NotFoundPage} />
          </Switch>
        </Suspense>
      </main>
      <KeyPrompt />
    </>
  );
}
