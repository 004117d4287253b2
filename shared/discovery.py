"""What the server says about itself: /Schemas, /ResourceTypes, /ServiceProviderConfig.

Everything here is built once, at import, from scim2-models' own descriptions of
the resources (RFC 7643 §5-§7). The limits announced in the ServiceProviderConfig
are the very constants the service enforces, so the two cannot drift apart.
"""

import os
import re
from typing import Annotated
from typing import Any

import scim2_models
from pydantic import AfterValidator
from scim2_models import AuthenticationScheme
from scim2_models import Bulk
from scim2_models import ChangePassword
from scim2_models import Context
from scim2_models import Email
from scim2_models import EnterpriseUser
from scim2_models import ETag
from scim2_models import Filter
from scim2_models import Group
from scim2_models import ListResponse
from scim2_models import Meta
from scim2_models import NotFoundException
from scim2_models import Pagination
from scim2_models import Patch
from scim2_models import ResourceType
from scim2_models import Schema
from scim2_models import ScimPolicy
from scim2_models import ScimProvider
from scim2_models import ServiceProviderConfig
from scim2_models import Sort

from shared.extension import AcmeUser
from shared.responses import ScimResponse

# --8<-- [start:limits]
MAX_PAYLOAD_SIZE = 1024 * 1024  # bytes, for any request body (RFC 7644 §3.7.4)
MAX_BULK_OPERATIONS = 100  # operations in one POST /Bulk
MAX_RESULTS = 200  # resources in one page of a list or search
DEFAULT_PAGE_SIZE = 100  # when the client sends no `count`
CURSOR_TIMEOUT = 3600  # seconds a cursor stays valid between pages (RFC 9865)
# Not in the ServiceProviderConfig, which has no field for them; a request over
# one is a 400 that names it (shared/limits.py).
MAX_JSON_DEPTH = 32  # arrays and objects nested in a body; a Bulk PATCH needs 8
MAX_FILTER_LENGTH = 4096  # characters in a filter, or in a PATCH path
MAX_FILTER_TERMS = 100  # comparisons one filter combines with and / or
# --8<-- [end:limits]

# --8<-- [start:directory-email]
# One "@", something on each side, no space: the shape of an RFC 5321 address.
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+")


def check_address(value: str | None) -> str | None:
    if value is not None and not _ADDRESS.fullmatch(value):
        raise ValueError("An email address is a local part, an @ and a domain")
    return value


class DirectoryEmail(Email):
    """An email address checked for its shape, and stored as the directory has it.

    scim2-models types `value` as pydantic's EmailStr, which also refuses
    addresses it deems undeliverable: a special-use domain (`jdoe@corp.local`,
    `qa@example.test`) or one without a dot (`admin@contoso`). RFC 7643 §4.1.2
    only asks for RFC 5321's syntax, which these have, and an identity provider
    sends what its directory holds: refusing them fails that user's whole
    provisioning. A shape is also checked in a microsecond, where EmailStr
    takes some fifty to a hundred.
    """

    value: Annotated[str | None, AfterValidator(check_address)] = None
    """Email addresses for the user."""


# --8<-- [end:directory-email]


# --8<-- [start:models]
# RFC 7643's User, its emails `DirectoryEmail`s. Its name is the schema's name
# in /Schemas, and a docstring would be the schema's description: hence `User`,
# and this comment.
class User(scim2_models.User):
    emails: list[DirectoryEmail] | None = None
    """Email addresses for the user."""


UserResource = User[EnterpriseUser | AcmeUser]
"""The User the server stores: the core schema plus two extensions.

EnterpriseUser is RFC 7643's own (§4.3); AcmeUser is the application's
(shared/extension.py). Neither is required of a client.
"""

USER_RESOURCE_TYPE = ResourceType.from_resource(UserResource)
GROUP_RESOURCE_TYPE = ResourceType.from_resource(Group)
# --8<-- [end:models]

# --8<-- [start:policy]
POLICY = ScimPolicy(
    # `unknown` stays strict (the default, `forbid`): an attribute or a PATCH
    # path the schema does not declare is a 400, so a mapping mistake in the
    # identity provider's console shows up at once instead of losing data.
    # Entra ID removes group members with {"op": "remove", "path": "members",
    # "value": [{"value": "<id>"}]}: the value says which entries to remove.
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    # Entra ID replaces `emails[type eq "work"].value` on users that have no
    # work email yet, expecting the entry to be created.
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)
# --8<-- [end:policy]

# --8<-- [start:service-provider-config]
SERVICE_PROVIDER_CONFIG = ServiceProviderConfig(
    # Where your administrators read how to connect an identity provider: the
    # page of your own documentation, when there is one.
    documentation_uri=os.environ.get("SCIM_DOCUMENTATION_URI") or None,
    patch=Patch(supported=True),
    bulk=Bulk(
        supported=True,
        max_operations=MAX_BULK_OPERATIONS,
        max_payload_size=MAX_PAYLOAD_SIZE,
    ),
    filter=Filter(supported=True, max_results=MAX_RESULTS),
    change_password=ChangePassword(supported=True),
    sort=Sort(supported=True),
    etag=ETag(supported=True),
    # RFC 9865: cursors as well as startIndex, which stays the default so that
    # clients written for RFC 7644 alone page as they always did (§2.4).
    pagination=Pagination(
        cursor=True,
        index=True,
        default_pagination_method=Pagination.DefaultPaginationMethod.index,
        default_page_size=DEFAULT_PAGE_SIZE,
        max_page_size=MAX_RESULTS,
        cursor_timeout=CURSOR_TIMEOUT,
    ),
    authentication_schemes=[
        AuthenticationScheme(
            type="oauthbearertoken",
            name="OAuth Bearer Token",
            description="A shared secret, sent as `Authorization: Bearer <token>`.",
            spec_uri="https://www.rfc-editor.org/rfc/rfc6750",
            primary=True,
        )
    ],
)
# --8<-- [end:service-provider-config]

# --8<-- [start:provider]
PROVIDER = ScimProvider(
    # Every schema the resource types name, extensions included: /Schemas
    # serves these, and an extension missing here is an error at import.
    models=[User, EnterpriseUser, AcmeUser, Group],
    resource_types=[USER_RESOURCE_TYPE, GROUP_RESOURCE_TYPE],
    config=SERVICE_PROVIDER_CONFIG,
    policy=POLICY,
)
"""The whole description of the service, handed to scim2-models on every call."""
# --8<-- [end:provider]

# --8<-- [start:users-only]
USERS_ONLY = ScimProvider(
    # The same User as the full service, both extensions included.
    models=[User, EnterpriseUser, AcmeUser],
    resource_types=[USER_RESOURCE_TYPE],
    config=SERVICE_PROVIDER_CONFIG.model_copy(
        update={
            "patch": Patch(supported=False),
            "bulk": Bulk(supported=False),
            "filter": Filter(supported=False),
            "sort": Sort(supported=False),
            "etag": ETag(supported=False),
            "pagination": Pagination(
                cursor=False,
                index=True,
                default_page_size=DEFAULT_PAGE_SIZE,
                max_page_size=MAX_RESULTS,
            ),
        }
    ),
    policy=POLICY,
)
"""What the first recipe (minimal.py) serves: Users, with none of the options."""
# --8<-- [end:users-only]


def _with_meta(document: Any, resource_type: str, location: str) -> Any:
    """Return a copy of a discovery document carrying its meta (RFC 7643 §5-§7)."""
    return document.model_copy(
        update={"meta": Meta(resource_type=resource_type, location=location)}
    )


def service_provider_config(
    base_url: str, provider: ScimProvider = PROVIDER
) -> ServiceProviderConfig:
    """The ServiceProviderConfig document, located under `base_url`."""
    return _with_meta(
        provider.config,
        "ServiceProviderConfig",
        f"{base_url}/ServiceProviderConfig",
    )


def schemas(base_url: str, provider: ScimProvider = PROVIDER) -> list[Schema]:
    """Every schema the service knows, each located under `base_url`."""
    return [
        _with_meta(schema, "Schema", f"{base_url}/Schemas/{schema.id}")
        for schema in provider.schemas
    ]


def resource_types(
    base_url: str, provider: ScimProvider = PROVIDER
) -> list[ResourceType]:
    """Every resource type the service serves, each located under `base_url`."""
    return [
        _with_meta(rtype, "ResourceType", f"{base_url}/ResourceTypes/{rtype.id}")
        for rtype in provider.resource_types
    ]


# --8<-- [start:discovery]
def get_service_provider_config(base_url: str) -> ScimResponse:
    config = service_provider_config(base_url)
    return ScimResponse(
        200, config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    )


def list_schemas(base_url: str) -> ScimResponse:
    return list_documents(schemas(base_url))


def get_schema(base_url: str, schema_id: str) -> ScimResponse:
    return get_document(schemas(base_url), schema_id, "Schema")


def list_resource_types(base_url: str) -> ScimResponse:
    return list_documents(resource_types(base_url))


def get_resource_type(base_url: str, type_id: str) -> ScimResponse:
    return get_document(resource_types(base_url), type_id, "ResourceType")


# --8<-- [end:discovery]


def list_documents(documents: list[Any]) -> ScimResponse:
    listing = ListResponse[type(documents[0])](
        total_results=len(documents),
        start_index=1,
        items_per_page=len(documents),
        resources=documents,
    )
    return ScimResponse(200, listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE))


def get_document(documents: list[Any], doc_id: str, what: str) -> ScimResponse:
    for document in documents:
        if document.id == doc_id:
            body = document.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
            return ScimResponse(200, body)
    raise NotFoundException(detail=f"No {what} {doc_id}")
