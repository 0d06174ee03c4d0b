import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partnership_crm.settings")
application = get_wsgi_application()

from .var import ensure_dirs  # noqa: E402

ensure_dirs()
