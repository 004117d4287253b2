"""A FastAPI application of its own, with the SCIM app mounted at PREFIX."""

from fastapi import FastAPI
from pydantic import BaseModel

from hosts import MINIMAL_PREFIX
from hosts import PREFIX
from integrations.fastapi_app import minimal

# --8<-- [start:import]
from integrations.fastapi_app.app import create_app
from shared import storage
from shared.existing_users import ExistingUsersStorage

# --8<-- [end:import]


class Item(BaseModel):
    name: str
    price: float


def create_host(token: str | None) -> FastAPI:
    """The host app; with a token, SCIM is mounted under PREFIX."""
    host = FastAPI(title="Host")

    @host.get("/")
    def home() -> dict[str, str]:
        return {"page": "home"}

    @host.post("/items")
    def create_item(item: Item) -> Item:
        return item

    if token is not None:
        # --8<-- [start:mount]
        host.mount(PREFIX, create_app(token))
        # --8<-- [end:mount]
        host.mount(MINIMAL_PREFIX, minimal.create_app(token))
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
