"""The SCIM URLs, relative to the prefix a project includes them at:

    path("api/scim/v2/", include("integrations.django_app.urls")),

in its ROOT_URLCONF; this repository's own is root_urls.py.
"""

from django.urls import path
from django.urls import re_path

from integrations.django_app import views

app_name = "scim"  # the namespace views.base_url() reverses "root" in
RESOURCES = r"(?P<endpoint>Users|Groups)"

# --8<-- [start:urls]
urlpatterns = [
    path("ServiceProviderConfig", views.service_provider_config),
    path("Schemas", views.schemas),
    path("Schemas/<str:schema_id>", views.schema),
    path("ResourceTypes", views.resource_types),
    path("ResourceTypes/<str:type_id>", views.resource_type),
    re_path(rf"^{RESOURCES}$", views.resource_collection),
    re_path(rf"^{RESOURCES}/\.search$", views.search_resources),
    re_path(rf"^{RESOURCES}/(?P<resource_id>[^/]+)$", views.resource),
    path(".search", views.search_all),
    path("Bulk", views.process_bulk),
    path("Me", views.me),
    # The SCIM root: its name tells views.base_url() where the prefix is.
    path("", views.route_not_found, name="root"),
    # Whatever else is under the prefix: a SCIM 404, not the project's page.
    # As every URL there resolves, CommonMiddleware's APPEND_SLASH (on in a
    # new project) never redirects one: /Users stays /Users.
    re_path(r"^", views.route_not_found),
]
# --8<-- [end:urls]
