"""A Flask application of its own, with the SCIM blueprint registered at PREFIX."""

from flask import Flask
from flask import request

from hosts import MINIMAL_PREFIX
from hosts import PREFIX
from integrations.flask_app import minimal

# --8<-- [start:import]
from integrations.flask_app.app import create_blueprint
from shared import storage
from shared.existing_users import ExistingUsersStorage

# --8<-- [end:import]

HOST_MAX_CONTENT_LENGTH = 1024  # the host's own limit: far below SCIM's


def create_host(token: str | None) -> Flask:
    """The host app; with a token, SCIM is registered under PREFIX."""
    host = Flask(__name__)
    host.config["MAX_CONTENT_LENGTH"] = HOST_MAX_CONTENT_LENGTH
    host.config["SECRET_KEY"] = "host-secret"

    @host.get("/")
    def home() -> str:
        return "<h1>The host's home page</h1>"

    @host.post("/notes")
    def add_note() -> dict:
        return {"note": request.get_data(as_text=True)}

    @host.errorhandler(404)
    def page_not_found(error: Exception) -> tuple[str, int]:
        return "<h1>The host's own 404 page</h1>", 404

    @host.errorhandler(413)
    def too_large(error: Exception) -> tuple[str, int]:
        return "<h1>The host's own 413 page</h1>", 413

    if token is not None:
        # --8<-- [start:register]
        host.register_blueprint(create_blueprint(token), url_prefix=PREFIX)
        # --8<-- [end:register]
        host.register_blueprint(
            minimal.create_blueprint(token), url_prefix=MINIMAL_PREFIX
        )
    return host


# --8<-- [start:existing-users]
def provision_into_users_table(database_url: str) -> ExistingUsersStorage:
    """SCIM reads and writes the host's own `users` table from now on.

    Call it once at start-up, before serving, with the database the host
    already uses (shared/existing_users.py adds its side tables there).
    """
    users = ExistingUsersStorage(database_url)
    storage.use(users)
    return users


# --8<-- [end:existing-users]
