from django.conf import settings


def portal(request):
    """The support contacts every page shows (FAQ Q2/Q3: phone around the clock)."""
    return {"support_phone": settings.SUPPORT_PHONE, "support_email": settings.SUPPORT_EMAIL}
