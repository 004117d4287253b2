"""The WSGI entry point gunicorn serves: `make serve FRAMEWORK=flask`."""

from integrations.flask_app import create_app
from shared import demo

app = create_app()
demo.load_if_enabled()
