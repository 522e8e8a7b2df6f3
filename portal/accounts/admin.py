from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from portal.accounts import mfa
from portal.accounts.models import SecondFactorReset, User
from portal.accounts.services import give_customer_role
from support.admin import SafeActionsMixin

# API tokens (ApiToken) have no admin on purpose: a token is a login, and only its owner
# lists or revokes it (the "API access" page and the API). django-rest-knox's own token
# admin registers knox's model, which ApiToken swaps out, so Django skips it.


class PortalUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ["email", "full_name", "customer"]


class PortalUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(SafeActionsMixin, DjangoUserAdmin):
    form = PortalUserChangeForm
    add_form = PortalUserCreationForm
    ordering = ["email"]
    list_display = ["email", "full_name", "customer", "is_staff", "is_active", "last_login"]
    list_filter = ["is_staff", "is_active", "groups"]
    list_select_related = ["customer"]
    search_fields = ["email", "full_name", "customer__name"]
    autocomplete_fields = ["customer"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Personal info"), {"fields": ["full_name", "customer"]}),
        (_("Roles"), {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "full_name", "customer", "password1", "password2"],
            },
        ),
    ]
    filter_horizontal = ["groups"]
    actions = ["reset_second_factor"]

    @admin.action(
        description=_("Reset the second factor (they enrol again at next login)"),
        permissions=["reset_second_factor"],
    )
    def reset_second_factor(self, request, queryset):
        for user in queryset:
            mfa.reset_second_factor(user=user, by=request.user)
        count = len(queryset)
        self.message_user(
            request,
            ngettext(
                "Second factor reset for %(count)d user; recorded.",
                "Second factor reset for %(count)d users; recorded.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )

    def has_reset_second_factor_permission(self, request) -> bool:
        return request.user.has_perm("accounts.reset_second_factor")

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # After the form's groups are saved, or they would overwrite the role.
        give_customer_role(user=form.instance)


@admin.register(SecondFactorReset)
class SecondFactorResetAdmin(admin.ModelAdmin):
    """The record of resets: read only, as an audit trail is."""

    list_display = ["reset_at", "user", "reset_by", "devices_removed"]
    list_select_related = ["user", "reset_by"]
    search_fields = ["user__email", "reset_by__email"]
    date_hierarchy = "reset_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
