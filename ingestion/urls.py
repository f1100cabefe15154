from django.urls import path

from ingestion import views

app_name = "ingestion"
urlpatterns = [
    path("", views.SourceListView.as_view(), name="source-list"),
]
