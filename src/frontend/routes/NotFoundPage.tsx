import { Link, useLocation } from "wouter";

export default function NotFoundPage() {
  const [location] = useLocation();
  return (
    <section aria-labelledby="not-found-title">
      <h1 id="not-found-title">Page not found</h1>
      <p>
        Nothing lives at <code>{location}</code>. <Link href="/">Back to the runs</Link>.
      </p>
    </section>
  );
}
