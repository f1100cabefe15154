from django.urls import path

from segments import views

app_name = "segments"
urlpatterns = [
    path("", views.SegmentListView.as_view(), name="list"),
]
