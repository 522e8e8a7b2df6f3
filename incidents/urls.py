from django.urls import path

from incidents import views

app_name = "incidents"
urlpatterns = [
    path("status/", views.StatusView.as_view(), name="status"),
    path("operator/outages/", views.DeclareOutageView.as_view(), name="declare-outage"),
    path("operator/outages/<int:pk>/end/", views.EndOutageView.as_view(), name="end-outage"),
    path("damage/", views.DamageReportsView.as_view(), name="damage-reports"),
    path("damage/<int:pk>/", views.DamageReportView.as_view(), name="damage-report"),
    path("damage/photos/<int:pk>/", views.DamagePhotoView.as_view(), name="damage-photo"),
    path("sites/<int:pk>/check-in/", views.CheckInView.as_view(), name="check-in"),
    path("sites/<int:pk>/check-in-link/", views.CheckInTokenView.as_view(), name="check-in-token"),
]
