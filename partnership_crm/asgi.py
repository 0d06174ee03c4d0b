import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "partnership_crm.settings")
application = get_asgi_application()

from .var import ensure_dirs  # noqa: E402

ensure_dirs()
