from django.urls import path

from upgrades import views

app_name = "upgrades"
urlpatterns = [
    path("upgrades/", views.UpgradesView.as_view(), name="index"),
    path("upgrades/requests/<int:pk>/", views.UpgradeRequestDetailView.as_view(), name="request"),
    path(
        "upgrades/requests/<int:pk>/cancel/",
        views.CancelUpgradeRequestView.as_view(),
        name="cancel-request",
    ),
    path("upgrades/respond/", views.RespondView.as_view(), name="respond"),
    path("upgrades/answer/<str:token>/", views.RespondByLinkView.as_view(), name="respond-by-link"),
    path("operator/disasters/new/", views.DeclareDisasterFormView.as_view(), name="declare-form"),
    path("operator/disasters/", views.DeclareDisasterView.as_view(), name="declare"),
    path("operator/disasters/<int:pk>/", views.DisasterView.as_view(), name="disaster"),
    path(
        "operator/disasters/<int:pk>/progress.json",
        views.DisasterProgressView.as_view(),
        name="progress",
    ),
    path("operator/disasters/<int:pk>/extend/", views.ExtendDeadlineView.as_view(), name="extend"),
    path("operator/disasters/<int:pk>/end/", views.EndDisasterView.as_view(), name="end"),
]
