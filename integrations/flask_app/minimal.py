"""SCIM Users in one Flask file: scim2-models called directly, nothing hidden.

    host.register_blueprint(create_blueprint(token), url_prefix="/scim/v2")

Each view validates with scim2-models in the right `Context`, maps to a record
(`shared.mapping`), stores it (`shared.storage`) and dumps in the response
`Context`. Discovery, Users, SCIM errors and the bearer token; `app.py` adds
groups, filters, PATCH, Bulk, ETags and the quirks of identity providers.
"""

# --8<-- [start:recipe]

import hashlib
import hmac
import json
from typing import Any

from flask import Blueprint
from flask import Response
from flask import request
from flask import url_for
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

from shared import discovery
from shared import mapping
from shared import storage
from shared.discovery import USERS_ONLY
from shared.discovery import UserResource


def scim_response(body: dict[str, Any] | None, status: int = 200, **headers: str):
    """A Flask response in SCIM's media type (RFC 7644 §3.1)."""
    if body is None:  # 204: no body, so no Content-Type either
        response = Response(status=status, headers=headers)
        del response.headers["Content-Type"]
        return response
    return Response(
        json.dumps(body), status, headers, content_type="application/scim+json"
    )


def user_response(record: dict[str, Any], ctx: Context, status: int = 200):
    """A user record as the SCIM User a client sees, with its ETag."""
    user = mapping.to_scim_user(record, base_url())
    params = ResponseParameters.model_validate(request.args.to_dict())
    body = user.model_dump(scim_ctx=ctx, response_parameters=params)
    headers = {"ETag": user.meta.version}
    if status == 201:
        headers["Location"] = user.meta.location
    return scim_response(body, status, **headers)


def base_url() -> str:
    """Where the host mounted the blueprint, for meta.location and Location."""
    return url_for(".get_service_provider_config", _external=True).removesuffix(
        "/ServiceProviderConfig"
    )


def existing_user(user_id: str) -> dict[str, Any]:
    record = storage.get_record(storage.USER, user_id)
    if record is None:
        raise NotFoundException(detail=f"User {user_id} not found")
    return record


def create_blueprint(token: str) -> Blueprint:
    """The SCIM endpoints, checking `token` on every request."""
    scim = Blueprint("scim_minimal", __name__)
    expected = hashlib.sha256(token.encode()).digest()

    @scim.before_request
    def require_bearer_token() -> None:
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        presented = hashlib.sha256(credentials.encode()).digest()
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented, expected):
            raise UnauthorizedException(detail="A valid bearer token is required")

    @scim.errorhandler(Exception)
    def scim_error(exc: Exception) -> Response:
        """Every error as a SCIM Error (RFC 7644 §3.12), never an HTML page."""
        if isinstance(exc, ValidationError):
            error = Error.from_validation_errors(exc)[0]
        elif isinstance(exc, SCIMException):
            error = exc.to_error()
        else:
            error = Error(status=getattr(exc, "code", 500), detail="Request failed")
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
        return scim_response(error.model_dump(), int(error.status), **headers)

    @scim.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def unknown_url(path: str) -> Response:
        raise NotFoundException(detail="No such SCIM endpoint")

    @scim.get("/ServiceProviderConfig")
    def get_service_provider_config() -> Response:
        config = discovery.service_provider_config(base_url(), USERS_ONLY)
        return scim_response(
            config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        )

    @scim.get("/Schemas")
    def list_schemas() -> Response:
        schemas = discovery.schemas(base_url(), USERS_ONLY)
        listing = ListResponse[Schema](total_results=len(schemas), resources=schemas)
        return scim_response(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE))

    @scim.get("/ResourceTypes")
    def list_resource_types() -> Response:
        types = discovery.resource_types(base_url(), USERS_ONLY)
        listing = ListResponse[ResourceType](total_results=len(types), resources=types)
        return scim_response(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE))

    @scim.post("/Users")
    def create_user() -> Response:
        user = UserResource.model_validate_json(
            request.get_data(),
            scim_ctx=Context.RESOURCE_CREATION_REQUEST,
            scim_provider=USERS_ONLY,
        )
        record = storage.save_record(storage.USER, mapping.from_scim_user(user))
        return user_response(record, Context.RESOURCE_CREATION_RESPONSE, 201)

    @scim.get("/Users/<user_id>")
    def get_user(user_id: str) -> Response:
        return user_response(existing_user(user_id), Context.RESOURCE_QUERY_RESPONSE)

    @scim.get("/Users")
    def list_users() -> Response:
        search = SearchRequest[UserResource].model_validate(
            request.args.to_dict(), scim_ctx=Context.SEARCH_REQUEST
        )
        count = discovery.DEFAULT_PAGE_SIZE if search.count is None else search.count
        count = min(count, discovery.MAX_RESULTS)
        start = search.start_index_0 or 0
        total, records = storage.list_records(storage.USER, start, start + count)
        listing = ListResponse[UserResource](
            total_results=total,
            start_index=start + 1,
            items_per_page=len(records),
            resources=[mapping.to_scim_user(r, base_url()) for r in records] or None,
        )
        body = listing.model_dump(
            scim_ctx=Context.SEARCH_RESPONSE, response_parameters=search
        )
        return scim_response(body)

    @scim.put("/Users/<user_id>")
    def replace_user(user_id: str) -> Response:
        stored = existing_user(user_id)
        replacement = UserResource.model_validate_json(
            request.get_data(),
            scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST,
            scim_provider=USERS_ONLY,
        )
        # Keeps id, meta and groups; refuses a change to an immutable attribute.
        replacement.replace(mapping.to_scim_user(stored, base_url()))
        record = mapping.from_scim_user(replacement) | {"id": user_id}
        if "password_hash" not in record and "password_hash" in stored:
            record["password_hash"] = stored["password_hash"]  # no new password
        saved = storage.save_record(storage.USER, record, stored["version"])
        return user_response(saved, Context.RESOURCE_REPLACEMENT_RESPONSE)

    @scim.delete("/Users/<user_id>")
    def delete_user(user_id: str) -> Response:
        storage.delete_record(storage.USER, user_id)
        return scim_response(None, 204)

    return scim


# --8<-- [end:recipe]
