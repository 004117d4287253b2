"""URL routes of the SCIM server, all under /scim/v2/."""

from django.urls import path
from django.urls import re_path

from integrations.django_app import views

RESOURCES = r"(?P<endpoint>Users|Groups)"

# --8<-- [start:urls]
urlpatterns = [
    path("scim/v2/ServiceProviderConfig", views.service_provider_config),
    path("scim/v2/Schemas", views.schemas),
    path("scim/v2/Schemas/<str:schema_id>", views.schema),
    path("scim/v2/ResourceTypes", views.resource_types),
    path("scim/v2/ResourceTypes/<str:type_id>", views.resource_type),
    re_path(rf"^scim/v2/{RESOURCES}$", views.resources),
    re_path(rf"^scim/v2/{RESOURCES}/\.search$", views.search),
    re_path(rf"^scim/v2/{RESOURCES}/(?P<resource_id>[^/]+)$", views.resource),
    path("scim/v2/.search", views.search_all),
    path("scim/v2/Bulk", views.bulk),
    path("scim/v2/Me", views.me),
]
# --8<-- [end:urls]

handler404 = views.route_not_found
handler500 = views.server_error
