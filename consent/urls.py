from django.urls import path

from consent import views

app_name = "consent"
urlpatterns = [
    path("", views.PrivacyDashboardView.as_view(), name="dashboard"),
]
