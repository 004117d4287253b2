"""The WSGI entry point gunicorn serves: `make serve FRAMEWORK=django`."""

import os

from django.core.wsgi import get_wsgi_application

from shared import demo

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "integrations.django_app.settings")
application = get_wsgi_application()
demo.load_if_enabled()
