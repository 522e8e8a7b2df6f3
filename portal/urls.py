from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from desk import views as desk_views
from desk.cti_api import CallEventView
from incidents.api import SiteCheckInView, StatusView
from portal import views
from portal.accounts import mfa_views as account_views
from portal.accounts.views import ApiTokensView, ThrottledPasswordResetView
from portal.api import router
from portal.tokens_api import ObtainTokenView
from support.admin import guard_every_admin
from support.views import ContactView

# Django's and the libraries' admins get the project's guard against forged input too.
guard_every_admin(admin.site)

auth_patterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path(
        "password/reset/",
        ThrottledPasswordResetView.as_view(),
        name="password_reset",
    ),
    path(
        "password/reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("api-tokens/", ApiTokensView.as_view(), name="api-tokens"),
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("mfa/", account_views.AccountView.as_view(), name="mfa-account"),
    path("mfa/setup/", account_views.SetupView.as_view(), name="mfa-setup"),
    path("mfa/verify/", account_views.VerifyView.as_view(), name="mfa-verify"),
    path(
        "mfa/recovery-codes/",
        account_views.RecoveryCodesView.as_view(),
        name="mfa-recovery-codes",
    ),
]

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("accounts/", include(auth_patterns)),
    path("subscriptions/", include("subscriptions.urls")),
    path("", include("upgrades.urls")),
    path("", include("incidents.urls")),
    path("", include("desk.urls")),
    path("operator/", views.OperatorDashboardView.as_view(), name="operator-dashboard"),
    # The support desk's queue (desk/queue.py): the name is older than the desk app.
    path("desk/", desk_views.QueueView.as_view(), name="support-desk"),
    path("healthz", views.healthz, name="healthz"),
    path("contact/", ContactView.as_view(), name="contact"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(router.urls)),
    path("api/v1/auth/token/", ObtainTokenView.as_view(), name="api-token"),
    path("api/v1/check-in/", SiteCheckInView.as_view(), name="check-in-api"),
    path("api/v1/status/", StatusView.as_view(), name="status-api"),
    path("api/v1/cti/events/", CallEventView.as_view(), name="cti-events"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start script as a file of its own (?script), so
    # the page runs under the same Content-Security-Policy as every other (no inline script).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

# A URL no route matches under /api/ answers in the API's error envelope.
handler404 = "portal.api.not_found"
