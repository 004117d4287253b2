"""The SCIM server as a Flask blueprint, for any Flask app to register.

    host.register_blueprint(create_blueprint(token), url_prefix="/api/scim/v2")

Everything SCIM happens in `shared/` (resources, search, bulk, discovery); this
file only moves HTTP in and out the Flask way. The blueprint keeps to its
prefix: the host's routes, error handlers and config stay as they were. Serve
it alone with `make serve FRAMEWORK=flask`.
"""

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import request
from flask import url_for
from flask.sansio.blueprints import BlueprintSetupState
from scim2_models import Error
from scim2_models import PayloadTooLargeException
from scim2_models import SCIMException
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import PathConverter

from shared import auth
from shared import bulk
from shared import discovery
from shared import parsing
from shared import resources
from shared import responses
from shared import search
from shared import storage
from shared import tenants
from shared.endpoints import ROOT_ENDPOINT
from shared.responses import ScimResponse

# The routes, the body limit and the error handlers; create_blueprint() wraps
# them in a blueprint that holds the token.
scim = Blueprint("routes", __name__)
RESOURCES = "<any(Users, Groups):endpoint>"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


# --8<-- [start:response]
def to_response(result: ScimResponse) -> Response:
    """A Flask response carrying a SCIM result as application/scim+json."""
    if result.content is None:  # 204 and 304 carry no body, so no Content-Type
        response = Response(status=result.status, headers=result.headers)
        del response.headers["Content-Type"]
        return response
    return Response(
        result.content,  # JSON bytes, often kept from an earlier answer
        status=result.status,
        headers=result.headers,
        content_type=responses.SCIM_CONTENT_TYPE,
    )


def base_url() -> str:
    """The absolute URL of the SCIM root, for meta.location and Location.

    It is wherever the host registered the blueprint: url_for() knows.
    """
    return url_for(".unknown_url", path="", _external=True).rstrip("/")


@scim.before_request
def limit_body_size() -> None:
    # Werkzeug refuses a larger body while reading it, chunked or not (413).
    # Flask 3.1 takes a limit per request: the host's MAX_CONTENT_LENGTH stays.
    request.max_content_length = discovery.MAX_PAYLOAD_SIZE


def request_body() -> bytes:
    """The raw JSON body, read within the limit above."""
    parsing.check_content_type(request.content_type)
    return request.get_data(cache=False)


# --8<-- [end:response]


# --8<-- [start:errors]
# A blueprint's handlers see the errors of its own requests only. Flask tries
# every handler for a status code, the host's included, before any for a
# class such as Exception: so 413, which Werkzeug raises while reading a body,
# gets a handler here too.
@scim.errorhandler(RequestEntityTooLarge)
@scim.errorhandler(Exception)
def handle_exception(exc: Exception) -> Response:
    """Every error leaves as a SCIM Error body, never an HTML page."""
    if isinstance(exc, RequestEntityTooLarge):
        exc = PayloadTooLargeException()
    elif isinstance(exc, HTTPException):
        exc = SCIMException.from_error(Error(status=exc.code, detail=exc.description))
    return to_response(responses.error_response(exc))


class AnyPathConverter(PathConverter):
    """Werkzeug's path converter, but its `.` also matches a newline (%0A)."""

    regex = "(?s:[^/].*?)"


@scim.record
def add_any_path_converter(state: BlueprintSetupState) -> None:
    # Converters belong to the app's URL map: this adds a name no host uses.
    state.app.url_map.converters["scim_any_path"] = AnyPathConverter


# A URL no rule matches, or only with other methods, fails in routing, before
# any blueprint is known: the host would answer. So this last rule takes
# every other URL under the prefix, the prefix itself included.
@scim.route("/", defaults={"path": ""}, strict_slashes=False)
@scim.route("/<scim_any_path:path>")
def unknown_url(path: str) -> Response:
    """404 for a URL no SCIM route serves, 405 for one served to other methods."""
    adapter = current_app.create_url_adapter(request)
    endpoints = {adapter.match(method=method)[0] for method in METHODS}
    if endpoints == {request.endpoint}:  # every method would end up here
        return to_response(responses.route_not_found())
    return to_response(responses.method_not_allowed())


@scim.record
def take_any_method(state: BlueprintSetupState) -> None:
    # route() takes a list of methods; a Werkzeug rule whose methods are None
    # takes them all, OPTIONS, TRACE or FOO as well as GET.
    endpoint = f"{state.name_prefix}.{state.name}.unknown_url".lstrip(".")
    for rule in state.app.url_map.iter_rules(endpoint):
        rule.methods = None
        rule.provide_automatic_options = False


# --8<-- [end:errors]


# --8<-- [start:discovery]
@scim.get("/ServiceProviderConfig")
def get_service_provider_config() -> Response:
    return to_response(discovery.get_service_provider_config(base_url()))


@scim.get("/Schemas")
def list_schemas() -> Response:
    return to_response(discovery.list_schemas(base_url()))


@scim.get("/Schemas/<schema_id>")
def get_schema(schema_id: str) -> Response:
    return to_response(discovery.get_schema(base_url(), schema_id))


@scim.get("/ResourceTypes")
def list_resource_types() -> Response:
    return to_response(discovery.list_resource_types(base_url()))


@scim.get("/ResourceTypes/<type_id>")
def get_resource_type(type_id: str) -> Response:
    return to_response(discovery.get_resource_type(base_url(), type_id))


# --8<-- [end:discovery]


# --8<-- [start:create-resource]
@scim.post(f"/{RESOURCES}")
def create_resource(endpoint: str) -> Response:
    result = resources.create_resource(
        endpoint, request_body(), request.args, base_url()
    )
    return to_response(result)


# --8<-- [end:create-resource]


# --8<-- [start:get-resource]
@scim.get(f"/{RESOURCES}/<resource_id>")
def get_resource(endpoint: str, resource_id: str) -> Response:
    result = resources.get_resource(
        endpoint,
        resource_id,
        request.args,
        base_url(),
        if_none_match=request.headers.get("If-None-Match"),
    )
    return to_response(result)


# --8<-- [end:get-resource]


# --8<-- [start:list-resources]
@scim.get(f"/{RESOURCES}")
def list_resources(endpoint: str) -> Response:
    return to_response(search.list_resources(endpoint, request.args, base_url()))


@scim.post(f"/{RESOURCES}/.search")
def search_resources(endpoint: str) -> Response:
    return to_response(search.search_resources(endpoint, request_body(), base_url()))


@scim.post("/.search")
def search_all_resources() -> Response:
    return to_response(
        search.search_resources(ROOT_ENDPOINT, request_body(), base_url())
    )


# --8<-- [end:list-resources]


# --8<-- [start:replace-resource]
@scim.put(f"/{RESOURCES}/<resource_id>")
def replace_resource(endpoint: str, resource_id: str) -> Response:
    result = resources.replace_resource(
        endpoint,
        resource_id,
        request_body(),
        request.args,
        base_url(),
        if_match=request.headers.get("If-Match"),
    )
    return to_response(result)


# --8<-- [end:replace-resource]


# --8<-- [start:patch-resource]
@scim.patch(f"/{RESOURCES}/<resource_id>")
def patch_resource(endpoint: str, resource_id: str) -> Response:
    result = resources.patch_resource(
        endpoint,
        resource_id,
        request_body(),
        request.args,
        base_url(),
        if_match=request.headers.get("If-Match"),
    )
    return to_response(result)


# --8<-- [end:patch-resource]


# --8<-- [start:delete-resource]
@scim.delete(f"/{RESOURCES}/<resource_id>")
def delete_resource(endpoint: str, resource_id: str) -> Response:
    result = resources.delete_resource(
        endpoint, resource_id, if_match=request.headers.get("If-Match")
    )
    return to_response(result)


# --8<-- [end:delete-resource]


# --8<-- [start:bulk]
@scim.post("/Bulk")
def process_bulk() -> Response:
    return to_response(bulk.process_bulk(request_body(), base_url()))


# --8<-- [end:bulk]


@scim.route("/Me", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def me() -> Response:
    return to_response(resources.get_me())


# --8<-- [start:auth]
def create_blueprint(tokens: str | auth.TenantOfToken) -> Blueprint:
    """SCIM for a Flask app, which registers it at the prefix of its choice:

    host.register_blueprint(create_blueprint(token), url_prefix="/api/scim/v2")

    `tokens` is one token (the default tenant's), a TokenTable, or the host's
    own function from a token to its tenant (None for no tenant's).
    """
    if isinstance(tokens, auth.TokenTable):
        storage.check_tenants(tokens.tenants)  # a backend that can keep them apart
    tenant_of = auth.tenant_lookup(tokens)
    # The routes above, nested in a blueprint that holds the tokens: each host
    # has its own. Its check runs first, and a 401 it raises is an error of
    # the routes' requests, so their handler makes it a SCIM Error.
    guarded = Blueprint("scim", __name__)

    @guarded.before_request
    def require_bearer_token() -> None:
        tenant = auth.authenticate(request.headers.get("Authorization"), tenant_of)
        # Storage acts for this tenant until the request ends.
        g.scim_tenant = tenants.bind(tenant)

    @guarded.teardown_request
    def unbind_tenant(exc: BaseException | None) -> None:
        # The thread serves other requests next, the host's own among them.
        bound = g.pop("scim_tenant", None)
        if bound is not None:
            tenants.unbind(bound)

    guarded.register_blueprint(scim)
    return guarded


# --8<-- [end:auth]


# --8<-- [start:create-app]
def create_app(tokens: str | auth.TenantOfToken | None = None) -> Flask:
    """The application `make serve` runs: SCIM under /scim/v2, nothing else.

    Its tokens come from SCIM_TOKENS (`tenant:token,...`) or SCIM_TOKEN.
    """
    app = Flask(__name__)
    tokens = tokens or auth.tokens_from_environment()
    app.register_blueprint(create_blueprint(tokens), url_prefix="/scim/v2")
    return app


# --8<-- [end:create-app]
