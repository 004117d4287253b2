"""The FastAPI integration: `create_app()` returns the ASGI application."""

from integrations.fastapi_app.app import create_app

__all__ = ["create_app"]
