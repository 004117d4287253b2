"""The ASGI entry point uvicorn serves: `make serve FRAMEWORK=fastapi`."""

from integrations.fastapi_app import create_app
from shared import demo

app = create_app()
demo.load_if_enabled()
