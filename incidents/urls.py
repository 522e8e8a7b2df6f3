from django.urls import path

from incidents import views

app_name = "incidents"
urlpatterns = [
    path("status/", views.StatusView.as_view(), name="status"),
    path("operator/outages/", views.DeclareOutageView.as_view(), name="declare-outage"),
    path("operator/outages/<int:pk>/end/", views.EndOutageView.as_view(), name="end-outage"),
    path("damage/", views.DamageReportsView.as_view(), name="damage-reports"),
    path("damage/<int:pk>/", views.DamageReportView.as_view(), name="damage-report"),
    path(
        "damage/<int:pk>/photos/add/", views.DamagePhotoAddView.as_view(), name="damage-photo-add"
    ),
    path("damage/photos/<int:pk>/", views.DamagePhotoView.as_view(), name="damage-photo"),
    path("sites/<int:pk>/check-in/", views.CheckInView.as_view(), name="check-in"),
    path("sites/<int:pk>/check-in-link/", views.CheckInTokenView.as_view(), name="check-in-token"),
    path("operator/messages/", views.MassMessageListView.as_view(), name="mass-messages"),
    path("operator/messages/new/", views.MassMessageFormView.as_view(), name="mass-message-form"),
    path(
        "operator/messages/preview/",
        views.MassMessagePreviewView.as_view(),
        name="mass-message-preview",
    ),
    path("operator/messages/send/", views.MassMessageSendView.as_view(), name="mass-message-send"),
    path("operator/messages/<int:pk>/", views.MassMessageView.as_view(), name="mass-message"),
]
