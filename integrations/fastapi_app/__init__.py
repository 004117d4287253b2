"""The FastAPI integration: `create_app(token)` returns the ASGI app to mount."""

from integrations.fastapi_app.app import create_app

__all__ = ["create_app"]
