"""``python -m autopack``: the ``autopack`` command without its console script.

The Docker image does not ``pip install`` the project (its sources sit on ``PYTHONPATH``), so it
has no console script; its ``/usr/local/bin/autopack`` wrapper runs this module instead.
"""

from autopack.cli.main import app

if __name__ == "__main__":
    # The name shown in usage and help lines, rather than ``python -m autopack``.
    app(prog_name="autopack")
