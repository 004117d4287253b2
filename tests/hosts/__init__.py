"""Stock host applications, one per framework, with SCIM mounted at PREFIX.

Each is what a reader's own application could be: routes, error pages and
settings of its own, and SCIM as a guest under a prefix. The behaviour suite
runs against them (conftest.make_app), and test_host_apps.py checks that the
host behaves exactly as it does without SCIM.
"""

PREFIX = "/api/scim/v2"
# The first recipe, integrations/<framework>_app/minimal.py, mounted beside it:
# tests marked `minimal` run against it too.
MINIMAL_PREFIX = "/minimal/scim/v2"
