from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

from incidents.api import SiteCheckInView, StatusView
from portal import views
from portal.accounts.forms import OutboxPasswordResetForm
from portal.api import router
from support.views import ContactView

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
        auth_views.PasswordResetView.as_view(form_class=OutboxPasswordResetForm),
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
    path(
        "password/reset/complete/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("accounts/", include(auth_patterns)),
    path("subscriptions/", include("subscriptions.urls")),
    path("", include("upgrades.urls")),
    path("", include("incidents.urls")),
    path("", include("support.urls")),
    path("operator/", views.OperatorDashboardView.as_view(), name="operator-dashboard"),
    path("desk/", views.SupportDeskView.as_view(), name="support-desk"),
    path("healthz", views.healthz, name="healthz"),
    path("contact/", ContactView.as_view(), name="contact"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(router.urls)),
    path("api/v1/auth/token/", obtain_auth_token, name="api-token"),
    path("api/v1/check-in/", SiteCheckInView.as_view(), name="check-in-api"),
    path("api/v1/status/", StatusView.as_view(), name="status-api"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

# A URL no route matches under /api/ answers in the API's error envelope.
handler404 = "portal.api.not_found"
