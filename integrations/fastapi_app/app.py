"""The SCIM server as a FastAPI application, for any app to mount as a sub-app.

    host.mount("/api/scim/v2", create_app(token))

Everything SCIM happens in `shared/` (resources, search, bulk, discovery); this
file only moves HTTP in and out the FastAPI way. A mounted app has its own
routes and exception handlers: the host's stay as they were. Serve it alone
with `make serve FRAMEWORK=fastapi`.
"""

from typing import Annotated
from typing import Any

from fastapi import APIRouter
from fastapi import Depends
from fastapi import FastAPI
from fastapi import Header
from fastapi import Request
from fastapi import Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from scim2_models import Error
from scim2_models import SCIMException
from starlette.convertors import Convertor
from starlette.convertors import register_url_convertor
from starlette.exceptions import HTTPException

from shared import auth
from shared import bulk
from shared import discovery
from shared import endpoints
from shared import parsing
from shared import resources
from shared import responses
from shared import search
from shared import storage
from shared import tenants
from shared.endpoints import ROOT_ENDPOINT
from shared.responses import ScimResponse


class ResourceEndpointConvertor(Convertor[str]):
    """Matches the resource endpoints the service serves, like Flask's any()."""

    regex = "|".join(endpoints.ENDPOINTS)

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("resource", ResourceEndpointConvertor())
RESOURCES = "{endpoint:resource}"


# --8<-- [start:response]
def to_response(result: ScimResponse) -> Response:
    """A FastAPI response carrying a SCIM result as application/scim+json."""
    if result.content is None:  # 204 and 304 carry no body, so no Content-Type
        return Response(status_code=result.status, headers=result.headers)
    return Response(
        result.content,  # JSON bytes, often kept from an earlier answer
        status_code=result.status,
        headers=result.headers,
        media_type=responses.SCIM_CONTENT_TYPE,
    )


# Dependencies and handlers that only compute are `async def`: they run on the
# event loop, where a plain `def` would cost a trip to the threadpool each. The
# endpoints stay `def`, because the storage behind them may block on a database.
async def base_url(request: Request) -> str:
    """The absolute URL of the SCIM root, for meta.location and Location.

    It is where the host mounted this app: Starlette keeps that path in the
    scope's root_path (request.base_url is the host's root).
    """
    return str(request.url.replace(path=request.scope["root_path"], query=""))


async def request_body(
    request: Request, content_type: Annotated[str | None, Header()] = None
) -> bytes:
    """The raw JSON body, refused past the announced size while it streams in."""
    parsing.check_content_type(content_type)
    parsing.check_payload_size(int(request.headers.get("content-length") or 0))
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        parsing.check_payload_size(len(body))
    return bytes(body)


# --8<-- [end:response]


# --8<-- [start:auth]
async def require_bearer_token(
    request: Request, authorization: Annotated[str | None, Header()] = None
) -> None:
    tenant = auth.authenticate(authorization, request.app.state.scim_tenant_of)
    # Storage acts for this tenant. Each request runs in an asyncio task of
    # its own, and a sync endpoint in a copy of its context: the tenant goes
    # no further than this request.
    tenants.bind(tenant)


# --8<-- [end:auth]

scim = APIRouter(dependencies=[Depends(require_bearer_token)])
Body = Annotated[bytes, Depends(request_body)]
BaseUrl = Annotated[str, Depends(base_url)]
IfMatch = Annotated[str | None, Header()]
IfNoneMatch = Annotated[str | None, Header()]


# --8<-- [start:errors]
async def handle_scim_exception(request: Request, exc: Exception) -> Response:
    """Every error leaves as a SCIM Error body, never an HTML page."""
    return to_response(responses.error_response(exc))


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return to_response(responses.route_not_found())
    if exc.status_code == 405:
        return to_response(responses.method_not_allowed())
    error = Error(status=exc.status_code, detail=str(exc.detail))
    return await handle_scim_exception(request, SCIMException.from_error(error))


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    # The routes declare only headers, so this is a header FastAPI could not read.
    error = Error(status=400, scim_type="invalidValue", detail="Invalid request")
    return await handle_scim_exception(request, SCIMException.from_error(error))


# --8<-- [end:errors]


# --8<-- [start:discovery]
@scim.get("/ServiceProviderConfig")
def get_service_provider_config(base_url: BaseUrl) -> Response:
    return to_response(discovery.get_service_provider_config(base_url))


@scim.get("/Schemas")
def list_schemas(base_url: BaseUrl) -> Response:
    return to_response(discovery.list_schemas(base_url))


@scim.get("/Schemas/{schema_id}")
def get_schema(schema_id: str, base_url: BaseUrl) -> Response:
    return to_response(discovery.get_schema(base_url, schema_id))


@scim.get("/ResourceTypes")
def list_resource_types(base_url: BaseUrl) -> Response:
    return to_response(discovery.list_resource_types(base_url))


@scim.get("/ResourceTypes/{type_id}")
def get_resource_type(type_id: str, base_url: BaseUrl) -> Response:
    return to_response(discovery.get_resource_type(base_url, type_id))


# --8<-- [end:discovery]


# --8<-- [start:list-resources]
@scim.post(f"/{RESOURCES}/.search")
def search_resources(endpoint: str, body: Body, base_url: BaseUrl) -> Response:
    return to_response(search.search_resources(endpoint, body, base_url))


@scim.post("/.search")
def search_all_resources(body: Body, base_url: BaseUrl) -> Response:
    return to_response(search.search_resources(ROOT_ENDPOINT, body, base_url))


@scim.get(f"/{RESOURCES}")
def list_resources(endpoint: str, request: Request, base_url: BaseUrl) -> Response:
    return to_response(search.list_resources(endpoint, request.query_params, base_url))


# --8<-- [end:list-resources]


# --8<-- [start:create-resource]
@scim.post(f"/{RESOURCES}")
def create_resource(
    endpoint: str, request: Request, body: Body, base_url: BaseUrl
) -> Response:
    result = resources.create_resource(endpoint, body, request.query_params, base_url)
    return to_response(result)


# --8<-- [end:create-resource]


# --8<-- [start:get-resource]
@scim.get(f"/{RESOURCES}/{{resource_id}}")
def get_resource(
    endpoint: str,
    resource_id: str,
    request: Request,
    base_url: BaseUrl,
    if_none_match: IfNoneMatch = None,
) -> Response:
    result = resources.get_resource(
        endpoint, resource_id, request.query_params, base_url, if_none_match
    )
    return to_response(result)


# --8<-- [end:get-resource]


# --8<-- [start:replace-resource]
@scim.put(f"/{RESOURCES}/{{resource_id}}")
def replace_resource(
    endpoint: str,
    resource_id: str,
    request: Request,
    body: Body,
    base_url: BaseUrl,
    if_match: IfMatch = None,
) -> Response:
    result = resources.replace_resource(
        endpoint, resource_id, body, request.query_params, base_url, if_match
    )
    return to_response(result)


# --8<-- [end:replace-resource]


# --8<-- [start:patch-resource]
@scim.patch(f"/{RESOURCES}/{{resource_id}}")
def patch_resource(
    endpoint: str,
    resource_id: str,
    request: Request,
    body: Body,
    base_url: BaseUrl,
    if_match: IfMatch = None,
) -> Response:
    result = resources.patch_resource(
        endpoint, resource_id, body, request.query_params, base_url, if_match
    )
    return to_response(result)


# --8<-- [end:patch-resource]


# --8<-- [start:delete-resource]
@scim.delete(f"/{RESOURCES}/{{resource_id}}")
def delete_resource(
    endpoint: str, resource_id: str, if_match: IfMatch = None
) -> Response:
    return to_response(resources.delete_resource(endpoint, resource_id, if_match))


# --8<-- [end:delete-resource]


# --8<-- [start:bulk]
@scim.post("/Bulk")
def process_bulk(body: Body, base_url: BaseUrl) -> Response:
    return to_response(bulk.process_bulk(body, base_url))


# --8<-- [end:bulk]


@scim.api_route("/Me", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def me() -> Response:
    return to_response(resources.get_me())


# --8<-- [start:create-app]
def create_app(tokens: str | auth.TenantOfToken) -> FastAPI:
    """SCIM as an app of its own, which a host mounts where it likes:

    host.mount("/api/scim/v2", create_app(token))

    `tokens` is one token (the default tenant's), a TokenTable, or the host's
    own function from a token to its tenant (None for no tenant's).
    """
    if isinstance(tokens, auth.TokenTable):
        storage.check_tenants(tokens.tenants)  # a backend that can keep them apart
    # The SCIM schemas are the API description; FastAPI's own would be wrong.
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.state.scim_tenant_of = auth.tenant_lookup(tokens)
    app.include_router(scim)
    # A sub-app's handlers see its own requests only: the host's 404s and 422s
    # stay FastAPI's JSON.
    handlers: dict[Any, Any] = {
        SCIMException: handle_scim_exception,
        ValidationError: handle_scim_exception,
        HTTPException: handle_http_exception,
        RequestValidationError: handle_validation_error,
        # Anything else is a bug: a SCIM 500, and Starlette logs the traceback.
        Exception: handle_scim_exception,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
    return app


# --8<-- [end:create-app]
