"""The Flask integration: `create_blueprint(token)` for a host app to register,
`create_app()` for the application `make serve` runs."""

from integrations.flask_app.app import create_app
from integrations.flask_app.app import create_blueprint

__all__ = ["create_app", "create_blueprint"]
