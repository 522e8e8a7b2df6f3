from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from portal.models import Heartbeat
from support.admin import SafeActionsMixin

admin.site.site_header = _("BCP Portal support desk")
admin.site.site_title = _("BCP Portal support desk")
admin.site.index_title = _("Support desk")


@admin.register(Heartbeat)
class HeartbeatAdmin(SafeActionsMixin, admin.ModelAdmin):
    list_display = ["name", "beat_at", "count"]
    readonly_fields = ["name", "beat_at", "count"]

    def has_add_permission(self, request) -> bool:
        return False
