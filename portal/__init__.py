# Loaded with Django so that @shared_task and .delay_on_commit() use the portal's app.
from portal.celery import app as celery_app

__all__ = ["celery_app"]
