"""The ASGI entry point uvicorn serves: `make serve FRAMEWORK=fastapi`.

An application with nothing but SCIM, mounted at /scim/v2 as any host would.
"""

from fastapi import FastAPI

from integrations.fastapi_app import create_app
from shared import auth
from shared import demo

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
# SCIM_TOKENS (`tenant:token,...`), or SCIM_TOKEN for the one default tenant.
app.mount("/scim/v2", create_app(auth.tokens_from_environment()))
demo.load_if_enabled()
