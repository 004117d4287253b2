"""The other applications `make bench` serves next to the integrations.

- `peer`: scim2-server, the reference SCIM server on PyPI, as a WSGI app built
  the way its own `scim2-server` command builds it (in memory, bearer token).
- `flask_bare`, `fastapi_bare`, `django_bare`: one JSON endpoint per framework,
  with nothing behind it: the ceiling a SCIM endpoint of that framework can
  reach under the same server.
"""

import os

from scim2_models import ScimProvider
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME
from scim2_server.testserver.application import BearerTokenApplication
from scim2_server.utils import load_default_resource_types
from scim2_server.utils import load_default_schemas
from scim2_server.utils import load_default_service_provider_config

PAYLOAD = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]}


def make_peer() -> BearerTokenApplication:
    config = load_default_service_provider_config()
    config.authentication_schemes = [BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(),
        load_default_resource_types().values(),
        config=config,
    )
    service = ScimService(provider, secret=os.environ["SCIM_TOKEN"])
    return BearerTokenApplication(
        InMemoryStorage(),
        provider,
        service=service,
        bearer_tokens=[os.environ["SCIM_TOKEN"]],
    )


def make_flask_bare():  # noqa: ANN201
    from flask import Flask

    app = Flask(__name__)

    @app.get("/bare")
    def bare():  # noqa: ANN202
        return PAYLOAD

    return app


def make_fastapi_bare():  # noqa: ANN201
    from fastapi import FastAPI

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/bare")
    def bare() -> dict:
        return PAYLOAD

    return app


def make_django_bare():  # noqa: ANN201
    import django
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.http import JsonResponse
    from django.urls import path

    settings.configure(
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["django.middleware.security.SecurityMiddleware"],
        SECRET_KEY="bench-only",  # noqa: S106 - no sessions, no signing
    )
    django.setup()
    globals()["urlpatterns"] = [path("bare", lambda request: JsonResponse(PAYLOAD))]
    return get_wsgi_application()


WHICH = os.environ.get("BENCH_APP", "")
app = {
    "peer": make_peer,
    "flask": make_flask_bare,
    "fastapi": make_fastapi_bare,
    "django": make_django_bare,
}.get(WHICH, lambda: None)()
