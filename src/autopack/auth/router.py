"""HTTP routes of API keys: list, create, revoke. Admin scope only."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from autopack.api.deps import DatabaseDep
from autopack.api.schemas import ERROR_RESPONSES
from autopack.auth import service
from autopack.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, Scope
from autopack.auth.security import gatekeeper, require_scope

router = APIRouter(
    prefix="/keys",
    tags=["keys"],
    responses=ERROR_RESPONSES,
    dependencies=[require_scope(Scope.ADMIN)],
)


@router.get("", response_model=list[ApiKeyRead])
def list_api_keys(db: DatabaseDep) -> list[ApiKeyRead]:
    """Every key, revoked ones included; never the keys themselves."""
    with db.read_session() as session:
        return service.list_keys(session)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
def create_api_key(body: ApiKeyCreate, db: DatabaseDep, request: Request) -> ApiKeyCreated:
    """Create a key (409 when the name is taken). The response holds the key: the only time
    it can be read."""
    with db.session() as session:
        created = service.create_key(session, body)
    # The first key turns authentication on; this server need not wait for its cache.
    gatekeeper(request).forget()
    return created


@router.post("/{name}/revoke", response_model=ApiKeyRead)
def revoke_api_key(name: str, db: DatabaseDep, request: Request) -> ApiKeyRead:
    """Revoke a key for good (404 when there is none, 409 when it is already revoked)."""
    with db.session() as session:
        revoked = service.revoke_key(session, name)
    gatekeeper(request).forget()
    return revoked
