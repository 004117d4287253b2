"""The ASGI entry point uvicorn serves: `make serve FRAMEWORK=fastapi`.

An application with nothing but SCIM, mounted at /scim/v2 as any host would.
"""

import os

from fastapi import FastAPI

from integrations.fastapi_app import create_app
from shared import demo

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
app.mount("/scim/v2", create_app(os.environ["SCIM_TOKEN"]))
demo.load_if_enabled()
