from django.urls import path

from desk import views

app_name = "desk"
urlpatterns = [
    path("inquiries/", views.InquiriesView.as_view(), name="inquiries"),
    path("inquiries/<int:pk>/", views.InquiryDetailView.as_view(), name="inquiry"),
    path("inquiries/files/<int:pk>/", views.AttachmentView.as_view(), name="attachment"),
    path("desk/customers/<int:pk>/", views.CustomerStoryView.as_view(), name="customer"),
    path("desk/calls/", views.CallLogView.as_view(), name="calls"),
    path("desk/calls/<int:pk>/", views.CallDetailView.as_view(), name="call"),
]
