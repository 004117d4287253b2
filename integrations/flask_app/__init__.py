"""The Flask integration: `create_app()` returns the WSGI application."""

from integrations.flask_app.app import create_app

__all__ = ["create_app"]
