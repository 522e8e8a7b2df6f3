from django.urls import path

from support import views

app_name = "support"
urlpatterns = [
    path("inquiries/", views.InquiriesView.as_view(), name="inquiries"),
    path("inquiries/<int:pk>/", views.InquiryDetailView.as_view(), name="inquiry"),
]
