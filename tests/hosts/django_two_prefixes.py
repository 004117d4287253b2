"""A ROOT_URLCONF that includes SCIM twice, at two prefixes of any shape."""

from django.urls import include
from django.urls import path

SCIM_URLS = "integrations.django_app.urls"

urlpatterns = [
    path("tenants/acme/scim/", include(SCIM_URLS, namespace="acme")),
    # Inside a namespaced include of the project's own: "outer:scim".
    path("v2/", include(([path("", include(SCIM_URLS))], "outer"))),
]
