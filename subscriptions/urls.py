from django.urls import path

from subscriptions import views

app_name = "subscriptions"
urlpatterns = [
    path("<int:pk>/", views.SubscriptionDetailView.as_view(), name="detail"),
]
