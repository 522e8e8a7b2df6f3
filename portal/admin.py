from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from portal.models import Heartbeat
from support.admin import SafeActionsMixin

admin.site.site_header = _("BCP Portal support desk")
admin.site.site_title = _("BCP Portal support desk")
admin.site.index_title = _("Support desk")


@admin.register(Heartbeat)
class HeartbeatAdmin(SafeActionsMixin, admin.ModelAdmin):
    list_display = ["job", "beat_at", "count"]
    fields = readonly_fields = ["job", "beat_at", "count"]

    @admin.display(description=_("name"), ordering="name")
    def job(self, obj: Heartbeat) -> str:
        return obj.label

    def has_add_permission(self, request) -> bool:
        return False
