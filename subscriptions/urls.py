from django.urls import path

from subscriptions import views

app_name = "subscriptions"
urlpatterns = [
    path("<int:pk>/", views.SubscriptionDetailView.as_view(), name="detail"),
    path("<int:pk>/quote/", views.QuoteCreateView.as_view(), name="quote-create"),
    path("quotes/<int:pk>/", views.QuoteDetailView.as_view(), name="quote"),
    path("quotes/<int:pk>/accept/", views.AcceptQuoteView.as_view(), name="quote-accept"),
    path("invoices/", views.InvoiceListView.as_view(), name="invoices"),
    path("invoices/<int:pk>/", views.InvoiceDetailView.as_view(), name="invoice"),
    path("invoices/<int:pk>/pdf/", views.InvoicePdfView.as_view(), name="invoice-pdf"),
]
