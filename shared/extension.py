"""An extension schema of the application's own, next to the enterprise one.

RFC 7643 §3.3 lets a service provider add attributes to a resource under a
schema URN of its own. This one carries two attributes a fictional Acme
application keeps for each user. Declaring it is all scim2-models needs:
the server then validates it, serves it in /Schemas and /ResourceTypes, and
the storage keeps it, filters on it and sorts by it like any other attribute.
"""

from scim2_models import URN
from scim2_models import Extension

# --8<-- [start:extension]
ACME = "urn:example:params:scim:schemas:extension:acme:2.0:User"


class AcmeUser(Extension):
    """What Acme keeps for each user beyond the core and enterprise schemas."""

    __schema__ = URN(ACME)

    badge_number: str | None = None
    """The number printed on the user's building badge."""

    clearance_level: int | None = None
    """How far into the building the badge opens: 0 (lobby) to 5."""


# --8<-- [end:extension]
