"""The host project's own views and URLs, without SCIM (django_urls.py adds it)."""

from django.contrib import admin
from django.http import HttpRequest
from django.http import HttpResponse
from django.http import JsonResponse
from django.urls import path


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("<h1>The host's home page</h1>")


def notes(request: HttpRequest) -> JsonResponse:
    """A form the host protects with CSRF, as any new project does."""
    return JsonResponse({"note": request.POST.get("note", "")})


urlpatterns = [
    path("admin/", admin.site.urls),  # as startproject's urls.py has it
    path("", home),
    path("notes/", notes),
]
