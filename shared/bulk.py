"""POST /Bulk (RFC 7644 §3.7): many operations in one request."""

import json
from typing import Any

from scim2_models import BulkOperation
from scim2_models import BulkRequest
from scim2_models import BulkResponse
from scim2_models import ConflictException
from scim2_models import Context
from scim2_models import Group
from scim2_models import InvalidSyntaxException
from scim2_models import InvalidValueException
from scim2_models import PayloadTooLargeException
from scim2_models import SCIMException

from shared import discovery
from shared import limits
from shared import quirks
from shared.discovery import UserResource
from shared.endpoints import ENDPOINTS
from shared.parsing import check_payload_size
from shared.parsing import validate
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
    request, data = parse_bulk_request(body)
    operations = request.operations
    fail_on_errors = request.fail_on_errors
    announced = {announced_bulk_id(operation) for operation in operations} - {None}
    created: dict[str, str] = {}  # bulkId -> id of the resource it created
    results: dict[int, dict[str, Any]] = {}
    errors = 0
    pending = list(range(len(operations)))
    while pending and (fail_on_errors is None or errors < fail_on_errors):
        ready = [
            index
            for index in pending
            if not (bulk_references(data[index], operations[index].path) & announced)
            - created.keys()
        ]
        # No progress left (a cycle, or a POST that failed): the rest run now,
        # and each reference still unresolved is that operation's 409.
        for index in ready or pending:
            if fail_on_errors is not None and errors >= fail_on_errors:
                break
            results[index] = run_bulk_operation(
                operations[index], data[index], created, base_url
            )
            if int(results[index]["status"]) >= 400:
                errors += 1
                announced.discard(announced_bulk_id(operations[index]))
        pending = [index for index in pending if index not in results]
    response = BulkResponse[union_model(list(ENDPOINTS.values()))](operations=[])
    body_out = response.model_dump(scim_ctx=Context.BULK_RESPONSE)
    body_out["Operations"] = [results[index] for index in sorted(results)]
    return ScimResponse(200, body_out)


# --8<-- [end:bulk]


# --8<-- [start:parse-bulk]
def parse_bulk_request(body: bytes) -> tuple[BulkRequest, list[Any]]:
    """The request validated by scim2-models, and each operation's data as sent.

    In the BULK_REQUEST context scim2-models validates each operation alone
    (RFC 7644 §3.7.3): one it cannot read comes back as a failed result, with
    a `status` and an `Error`, and the others go on. The data as sent (after
    the identity-provider quirks of single requests) is what runs, once its
    bulkId references are resolved: through the very functions that serve
    POST, PUT and PATCH.
    """
    payload = limits.read_json(body)
    canonical_keys(payload, ("Operations",))
    operations = payload.get("Operations") if isinstance(payload, dict) else None
    if isinstance(operations, list):
        if len(operations) > discovery.MAX_BULK_OPERATIONS:
            raise PayloadTooLargeException(
                detail=f"A bulk request holds at most {discovery.MAX_BULK_OPERATIONS} "
                "operations"
            )
        for operation in operations:
            canonical_keys(operation, ("method", "bulkId", "version", "path", "data"))
            adapt_operation_data(operation)
    request = validate(BULK_REQUEST, payload, Context.BULK_REQUEST)
    if request.fail_on_errors is not None and request.fail_on_errors < 1:
        raise InvalidValueException(detail="failOnErrors must be a positive integer")
    return request, [
        operation.get("data") if isinstance(operation, dict) else None
        for operation in operations
    ]


BULK_REQUEST = BulkRequest[UserResource | Group]
# --8<-- [end:parse-bulk]


def canonical_keys(payload: Any, names: tuple[str, ...]) -> None:
    """Spell these keys as given: scim2-models reads attribute names in any case
    (RFC 7643 §2.1), and so must the code that reads the payload as sent."""
    if not isinstance(payload, dict):
        return
    for name in names:
        found = [key for key in payload if key.lower() == name.lower()]
        if len(found) > 1:
            raise InvalidSyntaxException(detail=f"{name} is given {len(found)} times")
        if found and found[0] != name:
            payload[name] = payload.pop(found[0])


def adapt_operation_data(operation: Any) -> None:
    """Bring an operation's data to what scim2-models reads, as single requests do."""
    if not isinstance(operation, dict) or not isinstance(operation.get("data"), dict):
        return
    if str(operation.get("method", "")).upper() == "PATCH":
        operation["data"] = quirks.split_filtered_keys(operation["data"])
    else:
        # The base URL fills a manager's $ref; any will do to validate.
        operation["data"] = quirks.adapt_body(operation["data"], "http://bulk")


def run_bulk_operation(
    operation: BulkOperation, data: Any, created: dict[str, str], base_url: str
) -> dict[str, Any]:
    method = operation.method.value if operation.method else ""
    result: dict[str, Any] = {"method": method}
    if operation.bulk_id is not None:
        result["bulkId"] = operation.bulk_id
    try:
        if operation.response is not None:  # scim2-models could not read it
            raise SCIMException.from_error(operation.response)
        path = resolve_bulk_ids(operation.path or "", created)
        body = json.dumps(resolve_bulk_ids(data, created)).encode()
        endpoint_name, _, resource_id = path.strip("/").partition("/")
        version = operation.version
        if method == "POST":
            if resource_id or not operation.bulk_id:
                raise InvalidValueException(
                    detail="POST needs a bulkId and a path like /Users"
                )
            response = create_resource(endpoint_name, body, {}, base_url)
            created[operation.bulk_id] = response.body["id"]
        elif not resource_id:
            raise InvalidValueException(
                detail=f"{method} needs a path like /Users/<id>"
            )
        elif method == "PUT":
            response = replace_resource(
                endpoint_name, resource_id, body, {}, base_url, version
            )
        elif method == "PATCH":
            response = patch_resource(
                endpoint_name, resource_id, body, {}, base_url, version
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


def announced_bulk_id(operation: BulkOperation) -> str | None:
    """The bulkId a POST announces, if it is one that scim2-models could read."""
    if operation.method == BulkOperation.Method.post and operation.response is None:
        return operation.bulk_id
    return None


def bulk_references(*values: Any) -> set[str]:
    """Every bulkId that "bulkId:<id>" strings in an operation's data or path name."""
    if len(values) != 1:
        return set().union(*(bulk_references(value) for value in values))
    (value,) = values
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
