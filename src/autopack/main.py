"""The uvicorn target named by the deployment guide: ``uvicorn autopack.main:app``.

Importing this module builds the app but reads no settings and opens no database: that happens
when the server starts the app (its lifespan).
"""

from autopack.api.app import create_app

app = create_app()
