"""Bearer-token authentication of mutations; without a token the service is read-only."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

from nasprune.service.settings import TOKEN_ENV, ServiceSettings

READ_ONLY = (
    f"this service is read-only: start it with ${TOKEN_ENV} set to allow launching and "
    "changing searches"
)


def require_token(request: Request) -> None:
    """FastAPI dependency of every mutating endpoint: 403 when the service is read-only,
    401 without ``Authorization: Bearer <token>`` or with a wrong token."""
    settings: ServiceSettings = request.app.state.settings
    if settings.token is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, READ_ONLY)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), settings.token.encode()
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "this endpoint needs the header `Authorization: Bearer <token>` with the "
            f"service's token (${TOKEN_ENV})",
            headers={"WWW-Authenticate": "Bearer"},
        )
