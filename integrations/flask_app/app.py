"""The SCIM server as a Flask blueprint: routes, auth and error handlers.

Everything SCIM happens in `shared.service`; this file only moves HTTP in and
out the Flask way. Serve it with `make serve FRAMEWORK=flask`.
"""

import json
import os

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import current_app
from flask import request
from scim2_models import Error
from scim2_models import PayloadTooLargeException
from scim2_models import SCIMException
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.exceptions import NotFound
from werkzeug.exceptions import RequestEntityTooLarge

from shared import discovery
from shared import service
from shared.service import ROOT_ENDPOINT
from shared.service import ScimResponse

scim = Blueprint("scim", __name__, url_prefix="/scim/v2")
RESOURCES = "<any(Users, Groups):endpoint>"


# --8<-- [start:response]
def to_response(result: ScimResponse) -> Response:
    """A Flask response carrying a SCIM result as application/scim+json."""
    if result.body is None:  # 204 and 304 carry no body, so no Content-Type
        response = Response(status=result.status, headers=result.headers)
        del response.headers["Content-Type"]
        return response
    return Response(
        json.dumps(result.body),
        status=result.status,
        headers=result.headers,
        content_type=service.SCIM_CONTENT_TYPE,
    )


def base_url() -> str:
    """The absolute URL of the SCIM root, for meta.location and Location."""
    return request.root_url.rstrip("/") + scim.url_prefix


def request_body() -> bytes:
    """The raw JSON body; Flask enforces MAX_CONTENT_LENGTH while reading it."""
    service.check_content_type(request.content_type)
    return request.get_data(cache=False)


# --8<-- [end:response]


# --8<-- [start:auth]
@scim.before_request
def require_bearer_token() -> None:
    service.check_bearer_token(
        request.headers.get("Authorization"), current_app.config["SCIM_TOKEN"]
    )


# --8<-- [end:auth]


# --8<-- [start:errors]
def handle_exception(exc: Exception) -> Response:
    """Every error leaves as a SCIM Error body, never an HTML page."""
    if isinstance(exc, NotFound):
        return to_response(service.route_not_found())
    if isinstance(exc, MethodNotAllowed):
        return to_response(service.method_not_allowed())
    if isinstance(exc, RequestEntityTooLarge):
        exc = PayloadTooLargeException()
    elif isinstance(exc, HTTPException):
        exc = SCIMException.from_error(Error(status=exc.code, detail=exc.description))
    return to_response(service.error_response(exc))


# --8<-- [end:errors]


# --8<-- [start:discovery]
@scim.get("/ServiceProviderConfig")
def get_service_provider_config() -> Response:
    return to_response(service.get_service_provider_config(base_url()))


@scim.get("/Schemas")
def list_schemas() -> Response:
    return to_response(service.list_schemas(base_url()))


@scim.get("/Schemas/<schema_id>")
def get_schema(schema_id: str) -> Response:
    return to_response(service.get_schema(base_url(), schema_id))


@scim.get("/ResourceTypes")
def list_resource_types() -> Response:
    return to_response(service.list_resource_types(base_url()))


@scim.get("/ResourceTypes/<type_id>")
def get_resource_type(type_id: str) -> Response:
    return to_response(service.get_resource_type(base_url(), type_id))


# --8<-- [end:discovery]


# --8<-- [start:create-resource]
@scim.post(f"/{RESOURCES}")
def create_resource(endpoint: str) -> Response:
    result = service.create_resource(endpoint, request_body(), request.args, base_url())
    return to_response(result)


# --8<-- [end:create-resource]


# --8<-- [start:get-resource]
@scim.get(f"/{RESOURCES}/<resource_id>")
def get_resource(endpoint: str, resource_id: str) -> Response:
    result = service.get_resource(
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
    return to_response(service.list_resources(endpoint, request.args, base_url()))


@scim.post(f"/{RESOURCES}/.search")
def search_resources(endpoint: str) -> Response:
    return to_response(service.search_resources(endpoint, request_body(), base_url()))


@scim.post("/.search")
def search_all_resources() -> Response:
    return to_response(
        service.search_resources(ROOT_ENDPOINT, request_body(), base_url())
    )


# --8<-- [end:list-resources]


# --8<-- [start:replace-resource]
@scim.put(f"/{RESOURCES}/<resource_id>")
def replace_resource(endpoint: str, resource_id: str) -> Response:
    result = service.replace_resource(
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
    result = service.patch_resource(
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
    result = service.delete_resource(
        endpoint, resource_id, if_match=request.headers.get("If-Match")
    )
    return to_response(result)


# --8<-- [end:delete-resource]


# --8<-- [start:bulk]
@scim.post("/Bulk")
def process_bulk() -> Response:
    return to_response(service.process_bulk(request_body(), base_url()))


# --8<-- [end:bulk]


@scim.route("/Me", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def me() -> Response:
    return to_response(service.get_me())


# --8<-- [start:create-app]
def create_app(token: str | None = None) -> Flask:
    """The Flask application serving SCIM under /scim/v2."""
    app = Flask(__name__)
    app.config["SCIM_TOKEN"] = token or os.environ["SCIM_TOKEN"]
    # Werkzeug refuses a larger body while reading it, chunked or not (413).
    app.config["MAX_CONTENT_LENGTH"] = discovery.MAX_PAYLOAD_SIZE
    app.register_blueprint(scim)
    app.register_error_handler(Exception, handle_exception)
    return app


# --8<-- [end:create-app]
