"""SCIM Users in one FastAPI file: scim2-models called directly, nothing hidden.

    host.mount("/scim/v2", create_app(token))

Each endpoint validates with scim2-models in the right `Context`, maps to a record
(`shared.mapping`), stores it (`shared.storage`) and dumps in the response
`Context`. Discovery, Users, SCIM errors and the bearer token; `app.py` adds
groups, filters, PATCH, Bulk, ETags and the quirks of identity providers.
"""

# --8<-- [start:recipe]

import hashlib
import hmac
import json
from typing import Any

from fastapi import Depends
from fastapi import FastAPI
from fastapi import Request
from fastapi import Response
from pydantic import ValidationError
from scim2_models import Context
from scim2_models import Error
from scim2_models import ListResponse
from scim2_models import NotFoundException
from scim2_models import ResourceType
from scim2_models import ResponseParameters
from scim2_models import Schema
from scim2_models import SCIMException
from scim2_models import SearchRequest
from scim2_models import UnauthorizedException
from starlette.exceptions import HTTPException

from shared import discovery
from shared import mapping
from shared import storage
from shared.discovery import USERS_ONLY
from shared.discovery import UserResource


def scim_response(body: dict[str, Any] | None, status: int = 200, **headers: str):
    """A response in SCIM's media type (RFC 7644 §3.1); 204 carries no body."""
    if body is None:
        return Response(status_code=status, headers=headers)
    content = json.dumps(body)
    return Response(content, status, headers, media_type="application/scim+json")


def user_response(request: Request, record: dict[str, Any], ctx: Context, status=200):
    """A user record as the SCIM User a client sees, with its ETag."""
    user = mapping.to_scim_user(record, base_url(request))
    params = ResponseParameters.model_validate(dict(request.query_params))
    body = user.model_dump(scim_ctx=ctx, response_parameters=params)
    headers = {"ETag": user.meta.version}
    if status == 201:
        headers["Location"] = user.meta.location
    return scim_response(body, status, **headers)


def base_url(request: Request) -> str:
    """Where the host mounted this app (the scope's root_path), for Location."""
    return str(request.url.replace(path=request.scope["root_path"], query=""))


def existing_user(user_id: str) -> dict[str, Any]:
    record = storage.get_record(storage.USER, user_id)
    if record is None:
        raise NotFoundException(detail=f"User {user_id} not found")
    return record


def create_app(token: str) -> FastAPI:
    """The SCIM endpoints, checking `token` on every request."""
    expected = hashlib.sha256(token.encode()).digest()

    async def require_bearer_token(request: Request) -> None:
        authorization = request.headers.get("Authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        presented = hashlib.sha256(credentials.encode()).digest()
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented, expected):
            raise UnauthorizedException(detail="A valid bearer token is required")

    app = FastAPI(dependencies=[Depends(require_bearer_token)], openapi_url=None)

    @app.exception_handler(Exception)
    @app.exception_handler(SCIMException)
    @app.exception_handler(ValidationError)
    @app.exception_handler(HTTPException)  # Starlette's 404 and 405
    async def scim_error(request: Request, exc: Exception) -> Response:
        """Every error as a SCIM Error (RFC 7644 §3.12), never a traceback."""
        if isinstance(exc, ValidationError):
            error = Error.from_validation_errors(exc)[0]
        elif isinstance(exc, SCIMException):
            error = exc.to_error()
        elif isinstance(exc, HTTPException):
            error = Error(status=exc.status_code, detail=str(exc.detail))
        else:
            error = Error(status=500, detail="Request failed")
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
        return scim_response(error.model_dump(), int(error.status), **headers)

    @app.get("/ServiceProviderConfig")
    def get_service_provider_config(request: Request) -> Response:
        config = discovery.service_provider_config(base_url(request), USERS_ONLY)
        return scim_response(
            config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        )

    @app.get("/Schemas")
    def list_schemas(request: Request) -> Response:
        schemas = discovery.schemas(base_url(request), USERS_ONLY)
        listing = ListResponse[Schema](total_results=len(schemas), resources=schemas)
        return scim_response(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE))

    @app.get("/ResourceTypes")
    def list_resource_types(request: Request) -> Response:
        types = discovery.resource_types(base_url(request), USERS_ONLY)
        listing = ListResponse[ResourceType](total_results=len(types), resources=types)
        return scim_response(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE))

    @app.post("/Users")
    async def create_user(request: Request) -> Response:
        user = UserResource.model_validate_json(
            await request.body(),
            scim_ctx=Context.RESOURCE_CREATION_REQUEST,
            scim_provider=USERS_ONLY,
        )
        record = storage.save_record(storage.USER, mapping.from_scim_user(user))
        return user_response(request, record, Context.RESOURCE_CREATION_RESPONSE, 201)

    @app.get("/Users/{user_id}")
    def get_user(request: Request, user_id: str) -> Response:
        record = existing_user(user_id)
        return user_response(request, record, Context.RESOURCE_QUERY_RESPONSE)

    @app.get("/Users")
    def list_users(request: Request) -> Response:
        search = SearchRequest[UserResource].model_validate(
            dict(request.query_params), scim_ctx=Context.SEARCH_REQUEST
        )
        count = discovery.DEFAULT_PAGE_SIZE if search.count is None else search.count
        count = min(count, discovery.MAX_RESULTS)
        start = search.start_index_0 or 0
        total, records = storage.list_records(storage.USER, start, start + count)
        root = base_url(request)
        listing = ListResponse[UserResource](
            total_results=total,
            start_index=start + 1,
            items_per_page=len(records),
            resources=[mapping.to_scim_user(r, root) for r in records] or None,
        )
        body = listing.model_dump(
            scim_ctx=Context.SEARCH_RESPONSE, response_parameters=search
        )
        return scim_response(body)

    @app.put("/Users/{user_id}")
    async def replace_user(request: Request, user_id: str) -> Response:
        stored = existing_user(user_id)
        replacement = UserResource.model_validate_json(
            await request.body(),
            scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST,
            scim_provider=USERS_ONLY,
        )
        # Keeps id, meta and groups; refuses a change to an immutable attribute.
        replacement.replace(mapping.to_scim_user(stored, base_url(request)))
        record = mapping.from_scim_user(replacement) | {"id": user_id}
        if "password_hash" not in record and "password_hash" in stored:
            record["password_hash"] = stored["password_hash"]  # no new password
        saved = storage.save_record(storage.USER, record, stored["version"])
        return user_response(request, saved, Context.RESOURCE_REPLACEMENT_RESPONSE)

    @app.delete("/Users/{user_id}")
    def delete_user(user_id: str) -> Response:
        storage.delete_record(storage.USER, user_id)
        return scim_response(None, 204)

    return app


# --8<-- [end:recipe]
