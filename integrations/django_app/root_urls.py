"""The URLconf of this repository's Django project: SCIM at /scim/v2/, nothing else.

A project of yours includes the SCIM URLs the same way, at any prefix.
"""

from django.urls import include
from django.urls import path

urlpatterns = [path("scim/v2/", include("integrations.django_app.urls"))]
