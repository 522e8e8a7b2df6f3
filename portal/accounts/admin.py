from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm, UserCreationForm
from django.contrib.auth.models import Group, Permission
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from portal.accounts import mfa
from portal.accounts.models import Role, SecondFactorReset, User
from portal.accounts.services import give_customer_role
from support.admin import EstimatedCountPaginator, IndexedSearchMixin, SafeActionsMixin

# API tokens (ApiToken) have no admin on purpose: a token is a login, and only its owner
# lists or revokes it (the "API access" page and the API). django-rest-knox's own token
# admin registers knox's model, which ApiToken swaps out, so Django skips it.


def group_label(group: Group) -> str:
    """A role group by its translated name (the group keeps the role's code as name)."""
    return str(Role(group.name).label) if group.name in Role.values else group.name


# Django stores a permission's name in English when it creates the row ("Can add …").
DEFAULT_PERMISSIONS = {
    "add": _("Can add %(model)s"),
    "change": _("Can change %(model)s"),
    "delete": _("Can delete %(model)s"),
    "view": _("Can view %(model)s"),
}


def permission_label(permission: Permission) -> str:
    """A permission in the reader's language, named from its model as Django names it."""
    model = permission.content_type.model_class()
    if model is None:
        return str(permission)
    opts = model._meta
    action, _sep, model_name = permission.codename.partition("_")
    if action in DEFAULT_PERMISSIONS and model_name == opts.model_name:
        name = DEFAULT_PERMISSIONS[action] % {"model": opts.verbose_name}
    else:
        name = dict(opts.permissions).get(permission.codename, permission.name)
    return f"{opts.app_config.verbose_name} | {opts.verbose_name} | {name}"


class GroupFilter(admin.SimpleListFilter):
    title = _("groups")
    parameter_name = "groups__id__exact"

    def lookups(self, request, model_admin):
        return [(str(group.pk), group_label(group)) for group in Group.objects.order_by("name")]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isascii() and value.isdigit():
            return queryset.filter(groups__id=int(value))
        return queryset


class PortalUserCreationForm(UserCreationForm):
    class Meta:
        model = User
        fields = ["email", "full_name", "customer"]


class PortalUserChangeForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(IndexedSearchMixin, SafeActionsMixin, DjangoUserAdmin):
    form = PortalUserChangeForm
    add_form = PortalUserCreationForm
    ordering = ["email"]
    list_display = ["email", "full_name", "customer", "is_staff", "is_active", "last_login"]
    list_filter = ["is_staff", "is_active", GroupFilter]
    list_select_related = ["customer"]
    # Indexed: accounts_user_email_upper_idx and the customer's (subscriptions/models.py).
    search_fields = ["^email", "^customer__code", "^customer__name"]
    search_help_text = _("The start of the e-mail address, or of the customer's code or name.")
    paginator = EstimatedCountPaginator
    sortable_by = ["email"]
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

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        # Read only, the groups are text: by their translated names, not the codes.
        return [
            (
                name,
                {**options, "fields": ["roles" if f == "groups" else f for f in options["fields"]]},
            )
            for name, options in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "roles"]

    @admin.display(description=_("groups"))
    def roles(self, obj: User) -> str:
        return ", ".join(group_label(group) for group in obj.groups.all()) or "-"

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "groups":
            field.label_from_instance = group_label
        return field

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


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(DjangoGroupAdmin):
    """The role groups by their translated names (a group's name is the role's code)."""

    list_display = ["role"]

    @admin.display(description=_("name"), ordering="name")
    def role(self, obj: Group) -> str:
        return group_label(obj)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "permissions":
            field.label_from_instance = permission_label
        return field

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        group = self.get_object(request, unquote(object_id)) if object_id else None
        if group is not None:
            extra_context = {**(extra_context or {}), "subtitle": group_label(group)}
        return super().changeform_view(request, object_id, form_url, extra_context)
