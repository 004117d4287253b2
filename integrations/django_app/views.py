"""The SCIM server as Django views: one decorator for methods, auth and errors.

Everything SCIM happens in `shared/` (resources, search, bulk, discovery); this
file only moves HTTP in and out the Django way. urls.py routes them under the
prefix a project includes it at; serve them alone with `make serve
FRAMEWORK=django`.
"""

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from django.http import HttpResponse
from django.urls import get_script_prefix
from django.urls import get_urlconf
from django.urls import reverse
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from scim2_models import Error
from scim2_models import PayloadTooLargeException
from scim2_models import SCIMException

from shared import auth
from shared import bulk
from shared import discovery
from shared import parsing
from shared import resources
from shared import responses
from shared import search
from shared import tenants
from shared.endpoints import ROOT_ENDPOINT
from shared.responses import ScimResponse

View = Callable[..., ScimResponse]


# --8<-- [start:response]
def to_response(result: ScimResponse) -> HttpResponse:
    """A Django response carrying a SCIM result as application/scim+json."""
    if result.content is None:  # 204 and 304 carry no body, so no Content-Type
        response = HttpResponse(status=result.status)
        del response["Content-Type"]
    else:
        response = HttpResponse(
            result.content,  # JSON bytes, often kept from an earlier answer
            status=result.status,
            content_type=responses.SCIM_CONTENT_TYPE,
        )
    for name, value in result.headers.items():
        response[name] = value
    return response


def base_url(request: HttpRequest) -> str:
    """The absolute URL of the SCIM root, for meta.location and Location.

    It is wherever the project included urls.py: reverse() finds the root of
    the include this request came through, by its namespace ("scim", unless
    the project named it otherwise).
    """
    root = scim_root(
        request.resolver_match.namespace, get_script_prefix(), get_urlconf()
    )
    return request.build_absolute_uri(root).rstrip("/")


@functools.lru_cache(maxsize=64)
def scim_root(namespace: str, script_prefix: str, urlconf: Any) -> str:
    """reverse() of the root, once for each place it can be: a third of the
    time Django spends on a read went to reversing the same URL again.

    The path depends on the namespace, the script prefix (the WSGI
    SCRIPT_NAME, which Django sets per request) and the URLconf (which a
    middleware may set per request): all three key the cache.
    """
    return reverse(f"{namespace}:root", urlconf=urlconf)


def request_body(request: HttpRequest) -> bytes:
    """The raw JSON body; Django enforces DATA_UPLOAD_MAX_MEMORY_SIZE on read."""
    parsing.check_content_type(request.headers.get("Content-Type"))
    try:
        body = request.body
    except RequestDataTooBig:
        raise PayloadTooLargeException() from None
    parsing.check_payload_size(len(body))
    return body


# --8<-- [end:response]


# --8<-- [start:scim-view]
def scim_view(*methods: str) -> Callable[[View], Callable[..., HttpResponse]]:
    """Allow `methods`, require the bearer token, turn any error into a SCIM Error."""

    def decorate(view: View) -> Callable[..., HttpResponse]:
        # Clients send a bearer token, never a session cookie: nothing for
        # CsrfViewMiddleware to protect, and no CSRF token to expect.
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return to_response(responses.method_not_allowed())
            try:
                tenant = auth.authenticate(
                    request.headers.get("Authorization"), tenant_lookup()
                )
                with tenants.serving(tenant):  # storage acts for this tenant
                    return to_response(view(request, *args, **kwargs))
            except SuspiciousOperation as exc:
                # A Host not in ALLOWED_HOSTS, and the like: the client's fault.
                error = Error(status=400, detail=str(exc) or "Bad request")
                return to_response(
                    responses.error_response(SCIMException.from_error(error))
                )
            except Exception as exc:
                return to_response(responses.error_response(exc))

        return wrapper

    return decorate


# --8<-- [end:scim-view]


# --8<-- [start:tenant-lookup]
def tenant_lookup() -> auth.TenantOfToken:
    """Whose token a request carries, as the settings say.

    SCIM_TENANT_OF, the dotted path of the project's own function from a
    token to its tenant; else SCIM_TOKENS (`tenant:token,...`); else
    SCIM_TOKEN, the one default tenant's.
    """
    return _lookup(
        getattr(settings, "SCIM_TENANT_OF", None),
        getattr(settings, "SCIM_TOKENS", None),
        getattr(settings, "SCIM_TOKEN", None),
    )


@functools.lru_cache(maxsize=8)  # hashed once, not at every request
def _lookup(
    path: str | None, tokens: str | None, token: str | None
) -> auth.TenantOfToken:
    if path:
        return import_string(path)
    if tokens:
        return auth.TokenTable.parse(tokens)
    if token:
        return auth.tenant_lookup(token)
    raise ImproperlyConfigured("Set SCIM_TOKEN, SCIM_TOKENS or SCIM_TENANT_OF")


# --8<-- [end:tenant-lookup]


@csrf_exempt
def route_not_found(request: HttpRequest) -> HttpResponse:
    """Any other URL under the prefix, with any method: urls.py's catch-all."""
    return to_response(responses.route_not_found())


# --8<-- [start:discovery]
@scim_view("GET")
def service_provider_config(request: HttpRequest) -> ScimResponse:
    return discovery.get_service_provider_config(base_url(request))


@scim_view("GET")
def schemas(request: HttpRequest) -> ScimResponse:
    return discovery.list_schemas(base_url(request))


@scim_view("GET")
def schema(request: HttpRequest, schema_id: str) -> ScimResponse:
    return discovery.get_schema(base_url(request), schema_id)


@scim_view("GET")
def resource_types(request: HttpRequest) -> ScimResponse:
    return discovery.list_resource_types(base_url(request))


@scim_view("GET")
def resource_type(request: HttpRequest, type_id: str) -> ScimResponse:
    return discovery.get_resource_type(base_url(request), type_id)


# --8<-- [end:discovery]


@scim_view("GET", "POST")
def resource_collection(request: HttpRequest, endpoint: str) -> ScimResponse:
    """/Users and /Groups: GET lists, POST creates."""
    if request.method == "POST":
        return create_resource(request, endpoint)
    return list_resources(request, endpoint)


@scim_view("GET", "PUT", "PATCH", "DELETE")
def resource(request: HttpRequest, endpoint: str, resource_id: str) -> ScimResponse:
    """/Users/{id} and /Groups/{id}: one view, one function per method."""
    handlers = {
        "GET": get_resource,
        "PUT": replace_resource,
        "PATCH": patch_resource,
        "DELETE": delete_resource,
    }
    return handlers[request.method](request, endpoint, resource_id)


# --8<-- [start:create-resource]
def create_resource(request: HttpRequest, endpoint: str) -> ScimResponse:
    return resources.create_resource(
        endpoint, request_body(request), request.GET, base_url(request)
    )


# --8<-- [end:create-resource]


# --8<-- [start:get-resource]
def get_resource(request: HttpRequest, endpoint: str, resource_id: str) -> ScimResponse:
    return resources.get_resource(
        endpoint,
        resource_id,
        request.GET,
        base_url(request),
        if_none_match=request.headers.get("If-None-Match"),
    )


# --8<-- [end:get-resource]


# --8<-- [start:replace-resource]
def replace_resource(
    request: HttpRequest, endpoint: str, resource_id: str
) -> ScimResponse:
    return resources.replace_resource(
        endpoint,
        resource_id,
        request_body(request),
        request.GET,
        base_url(request),
        if_match=request.headers.get("If-Match"),
    )


# --8<-- [end:replace-resource]


# --8<-- [start:patch-resource]
def patch_resource(
    request: HttpRequest, endpoint: str, resource_id: str
) -> ScimResponse:
    return resources.patch_resource(
        endpoint,
        resource_id,
        request_body(request),
        request.GET,
        base_url(request),
        if_match=request.headers.get("If-Match"),
    )


# --8<-- [end:patch-resource]


# --8<-- [start:delete-resource]
def delete_resource(
    request: HttpRequest, endpoint: str, resource_id: str
) -> ScimResponse:
    return resources.delete_resource(
        endpoint, resource_id, if_match=request.headers.get("If-Match")
    )


# --8<-- [end:delete-resource]


# --8<-- [start:list-resources]
def list_resources(request: HttpRequest, endpoint: str) -> ScimResponse:
    return search.list_resources(endpoint, request.GET, base_url(request))


@scim_view("POST")
def search_resources(request: HttpRequest, endpoint: str) -> ScimResponse:
    return search.search_resources(endpoint, request_body(request), base_url(request))


@scim_view("POST")
def search_all(request: HttpRequest) -> ScimResponse:
    return search.search_resources(
        ROOT_ENDPOINT, request_body(request), base_url(request)
    )


# --8<-- [end:list-resources]


# --8<-- [start:bulk]
@scim_view("POST")
def process_bulk(request: HttpRequest) -> ScimResponse:
    return bulk.process_bulk(request_body(request), base_url(request))


# --8<-- [end:bulk]


@scim_view("GET", "POST", "PUT", "PATCH", "DELETE")
def me(request: HttpRequest) -> ScimResponse:
    return resources.get_me()
