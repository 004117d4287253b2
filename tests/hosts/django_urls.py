"""The host project's ROOT_URLCONF: its own URLs, and SCIM included under PREFIX."""

from django.urls import include
from django.urls import path

from hosts import django_views

urlpatterns = [
    *django_views.urlpatterns,
    # --8<-- [start:include]
    path("api/scim/v2/", include("integrations.django_app.urls")),
    # --8<-- [end:include]
    path("minimal/scim/v2/", include("integrations.django_app.minimal")),
]
