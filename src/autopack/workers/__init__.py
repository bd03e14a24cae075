"""Scale-out: runs executed by `autopack worker` processes, woken by procrastinate jobs in the
PostgreSQL database the deployment already has (docs/workers.md)."""
