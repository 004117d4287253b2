"""POST /Bulk (RFC 7644 §3.7): many operations in one request."""

import json
from typing import Any

from scim2_models import BulkRequest
from scim2_models import BulkResponse
from scim2_models import ConflictException
from scim2_models import Context
from scim2_models import InvalidSyntaxException
from scim2_models import InvalidValueException
from scim2_models import PayloadTooLargeException

from shared import discovery
from shared import limits
from shared.endpoints import ENDPOINTS
from shared.parsing import check_payload_size
from shared.resources import create_resource
from shared.resources import delete_resource
from shared.resources import patch_resource
from shared.resources import replace_resource
from shared.responses import ScimResponse
from shared.responses import error_response
from shared.search import union_model


# --8<-- [start:bulk]
def process_bulk(body: bytes, base_url: str) -> ScimResponse:
    """POST /Bulk (RFC 7644 §3.7): run each operation, resolving bulkId references.

    An operation that refers to a resource a later POST of the request creates
    waits for it (RFC 7644 §3.7.1); the results keep the request's order.
    """
    check_payload_size(len(body))
    request = parse_bulk_request(body)
    operations = request["Operations"]
    fail_on_errors = request.get("failOnErrors")
    announced = {announced_bulk_id(operation) for operation in operations} - {None}
    created: dict[str, str] = {}  # bulkId -> id of the resource it created
    results: dict[int, dict[str, Any]] = {}
    errors = 0
    pending = list(range(len(operations)))
    while pending and (fail_on_errors is None or errors < fail_on_errors):
        ready = [
            index
            for index in pending
            if not (bulk_references(operations[index]) & announced) - created.keys()
        ]
        # No progress left (a cycle, or a POST that failed): the rest run now,
        # and each reference still unresolved is that operation's 409.
        for index in ready or pending:
            if fail_on_errors is not None and errors >= fail_on_errors:
                break
            results[index] = run_bulk_operation(operations[index], created, base_url)
            if int(results[index]["status"]) >= 400:
                errors += 1
                announced.discard(announced_bulk_id(operations[index]))
        pending = [index for index in pending if index not in results]
    response = BulkResponse[union_model(list(ENDPOINTS.values()))](operations=[])
    body_out = response.model_dump(scim_ctx=Context.BULK_RESPONSE)
    body_out["Operations"] = [results[index] for index in sorted(results)]
    return ScimResponse(200, body_out)


# --8<-- [end:bulk]


def parse_bulk_request(body: bytes) -> dict[str, Any]:
    request = limits.read_json(body)
    if not isinstance(request, dict) or not isinstance(request.get("Operations"), list):
        raise InvalidSyntaxException(detail="A BulkRequest needs an Operations list")
    schemas = request.get("schemas")
    if not isinstance(schemas, list) or str(BulkRequest.__schema__) not in schemas:
        raise InvalidSyntaxException(
            detail=f"schemas must list {BulkRequest.__schema__}"
        )
    if len(request["Operations"]) > discovery.MAX_BULK_OPERATIONS:
        raise PayloadTooLargeException(
            detail=f"A bulk request holds at most {discovery.MAX_BULK_OPERATIONS} "
            "operations"
        )
    fail_on_errors = request.get("failOnErrors")
    if fail_on_errors is not None and (
        not isinstance(fail_on_errors, int) or fail_on_errors < 1
    ):
        raise InvalidValueException(detail="failOnErrors must be a positive integer")
    return request


def run_bulk_operation(
    operation: Any, created: dict[str, str], base_url: str
) -> dict[str, Any]:
    method = (
        str(operation.get("method", "")).upper() if isinstance(operation, dict) else ""
    )
    result: dict[str, Any] = {"method": method}
    try:
        if method not in ("POST", "PUT", "PATCH", "DELETE"):
            raise InvalidSyntaxException(
                detail="method must be POST, PUT, PATCH or DELETE"
            )
        if operation.get("bulkId") is not None:
            if not isinstance(operation["bulkId"], str):
                raise InvalidValueException(detail="bulkId must be a string")
            result["bulkId"] = operation["bulkId"]
        path = resolve_bulk_ids(str(operation.get("path", "")), created)
        data = json.dumps(resolve_bulk_ids(operation.get("data"), created)).encode()
        endpoint_name, _, resource_id = path.strip("/").partition("/")
        version = operation.get("version")
        if version is not None and not isinstance(version, str):
            raise InvalidValueException(detail='version must be an ETag, like W/"3"')
        if method == "POST":
            if resource_id or not operation.get("bulkId"):
                raise InvalidValueException(
                    detail="POST needs a bulkId and a path like /Users"
                )
            response = create_resource(endpoint_name, data, {}, base_url)
            created[operation["bulkId"]] = response.body["id"]
        elif not resource_id:
            raise InvalidValueException(
                detail=f"{method} needs a path like /Users/<id>"
            )
        elif method == "PUT":
            response = replace_resource(
                endpoint_name, resource_id, data, {}, base_url, version
            )
        elif method == "PATCH":
            response = patch_resource(
                endpoint_name, resource_id, data, {}, base_url, version
            )
        else:
            response = delete_resource(endpoint_name, resource_id, version)
            response.headers["Location"] = f"{base_url}/{endpoint_name}/{resource_id}"
    except Exception as exc:  # each operation fails alone (RFC 7644 §3.7.3)
        response = error_response(exc)
        result.update(status=str(response.status), response=response.body)
        return result
    if response.body is not None:
        result["location"] = response.body["meta"]["location"]
        result["version"] = response.headers["ETag"]
    else:
        result["location"] = response.headers["Location"]
    result["status"] = str(response.status)
    return result


def announced_bulk_id(operation: Any) -> str | None:
    """The bulkId a POST announces, if it is one."""
    if isinstance(operation, dict) and str(operation.get("method", "")).upper() == (
        "POST"
    ):
        bulk_id = operation.get("bulkId")
        return bulk_id if isinstance(bulk_id, str) else None
    return None


def bulk_references(value: Any) -> set[str]:
    """Every bulkId that "bulkId:<id>" strings in an operation refer to."""
    if isinstance(value, str) and (value.startswith("bulkId:") or "/bulkId:" in value):
        return {value.rpartition("bulkId:")[2]}
    if isinstance(value, list):
        return set().union(*(bulk_references(item) for item in value))
    if isinstance(value, dict):
        return set().union(*(bulk_references(item) for item in value.values()))
    return set()


def resolve_bulk_ids(value: Any, created: dict[str, str]) -> Any:
    """Replace every "bulkId:<id>" with the id the referenced POST created."""
    if isinstance(value, str) and value.startswith("bulkId:"):
        bulk_id = value.removeprefix("bulkId:")
        if bulk_id not in created:
            raise ConflictException(
                detail=f"bulkId {bulk_id!r} names no POST of this request that "
                "succeeded"
            )
        return created[bulk_id]
    if isinstance(value, str) and "/bulkId:" in value:
        head, _, bulk_id = value.rpartition("/bulkId:")
        return f"{head}/{resolve_bulk_ids('bulkId:' + bulk_id, created)}"
    if isinstance(value, list):
        return [resolve_bulk_ids(item, created) for item in value]
    if isinstance(value, dict):
        return {key: resolve_bulk_ids(item, created) for key, item in value.items()}
    return value
