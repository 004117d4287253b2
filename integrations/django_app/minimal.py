"""SCIM Users in one Django file: scim2-models called directly, nothing hidden.

    path("scim/v2/", include("integrations.django_app.minimal")),  # ROOT_URLCONF

Each view validates with scim2-models in the right `Context`, maps to a record
(`shared.mapping`), stores it (`shared.storage`) and dumps in the response
`Context`. Discovery, Users, SCIM errors, the bearer token (`SCIM_TOKEN` in
settings); `views.py` adds groups, filters, PATCH, Bulk, ETags and IdP quirks.
"""

# --8<-- [start:recipe]

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.http import HttpResponse
from django.urls import path
from django.urls import re_path
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
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

app_name = "scim_minimal"  # the namespace base_url() reverses in


def scim_response(body: dict[str, Any] | None, status: int = 200, **headers: str):
    """A response in SCIM's media type (RFC 7644 §3.1); 204 carries no body."""
    if body is None:
        response = HttpResponse(status=status, headers=headers)
        del response["Content-Type"]
        return response
    scim_json = "application/scim+json"
    return HttpResponse(json.dumps(body), scim_json, status, headers=headers)


def user_response(request: HttpRequest, record: dict, ctx: Context, status=200):
    """A user record as the SCIM User a client sees, with its ETag."""
    user = mapping.to_scim_user(record, base_url(request))
    params = ResponseParameters.model_validate(request.GET.dict())
    body = user.model_dump(scim_ctx=ctx, response_parameters=params)
    headers = {"ETag": user.meta.version}
    if status == 201:
        headers["Location"] = user.meta.location
    return scim_response(body, status, **headers)


def base_url(request: HttpRequest) -> str:
    """Where the project included these URLs, for meta.location and Location."""
    root = reverse(f"{request.resolver_match.namespace}:{SPC}")
    return request.build_absolute_uri(root).removesuffix("/ServiceProviderConfig")


def scim_view(*methods: str):
    """Allow `methods`, require the bearer token, answer any error as SCIM."""

    def decorate(view):
        # Clients send a bearer token, never a session cookie: no CSRF to check.
        @csrf_exempt
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                check_bearer_token(request.headers.get("Authorization", ""))
                if request.method not in methods:
                    raise SCIMException.from_error(
                        Error(status=405, detail="Method not allowed")
                    )
                return view(request, *args, **kwargs)
            except ValidationError as exc:
                error = Error.from_validation_errors(exc)[0]
            except SCIMException as exc:
                error = exc.to_error()
            except Exception:
                error = Error(status=500, detail="Request failed")
            headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
            return scim_response(error.model_dump(), int(error.status), **headers)

        return wrapper

    return decorate


def check_bearer_token(authorization: str) -> None:  # RFC 6750
    scheme, _, credentials = authorization.partition(" ")
    presented = hashlib.sha256(credentials.encode()).digest()
    expected = hashlib.sha256(settings.SCIM_TOKEN.encode()).digest()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented, expected):
        raise UnauthorizedException(detail="A valid bearer token is required")


@scim_view("GET")
def get_service_provider_config(request: HttpRequest) -> HttpResponse:
    config = discovery.service_provider_config(base_url(request), USERS_ONLY)
    return scim_response(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


@scim_view("GET")
def list_schemas(request: HttpRequest) -> HttpResponse:
    schemas = discovery.schemas(base_url(request), USERS_ONLY)
    listing = ListResponse[Schema](total_results=len(schemas), resources=schemas)
    return scim_response(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE))


@scim_view("GET")
def list_resource_types(request: HttpRequest) -> HttpResponse:
    types = discovery.resource_types(base_url(request), USERS_ONLY)
    listing = ListResponse[ResourceType](total_results=len(types), resources=types)
    return scim_response(listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE))


@scim_view("GET", "POST")
def users(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        user = UserResource.model_validate_json(
            request.body,
            scim_ctx=Context.RESOURCE_CREATION_REQUEST,
            scim_provider=USERS_ONLY,
        )
        record = storage.save_record(storage.USER, mapping.from_scim_user(user))
        return user_response(request, record, Context.RESOURCE_CREATION_RESPONSE, 201)
    search = SearchRequest[UserResource].model_validate(
        request.GET.dict(), scim_ctx=Context.SEARCH_REQUEST
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


@scim_view("GET", "PUT", "DELETE")
def user(request: HttpRequest, user_id: str) -> HttpResponse:
    if (stored := storage.get_record(storage.USER, user_id)) is None:
        raise NotFoundException(detail=f"User {user_id} not found")
    if request.method == "GET":
        return user_response(request, stored, Context.RESOURCE_QUERY_RESPONSE)
    if request.method == "DELETE":
        storage.delete_record(storage.USER, user_id)
        return scim_response(None, 204)
    replacement = UserResource.model_validate_json(
        request.body,
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


@scim_view("GET", "POST", "PUT", "PATCH", "DELETE")
def unknown_url(request: HttpRequest) -> HttpResponse:
    raise NotFoundException(detail="No such SCIM endpoint")


SPC = "service-provider-config"
urlpatterns = [
    path("ServiceProviderConfig", get_service_provider_config, name=SPC),
    path("Schemas", list_schemas),
    path("ResourceTypes", list_resource_types),
    path("Users", users),
    path("Users/<str:user_id>", user),
    # Anything else is a SCIM 404, so APPEND_SLASH never redirects a SCIM URL.
    re_path(r"^", unknown_url),
]


# --8<-- [end:recipe]
