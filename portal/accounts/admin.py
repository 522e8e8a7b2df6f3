from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.utils.translation import gettext_lazy as _

from portal.accounts.models import User
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

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # After the form's groups are saved, or they would overwrite the role.
        give_customer_role(user=form.instance)
