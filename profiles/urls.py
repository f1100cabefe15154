from django.urls import path

from profiles import views

app_name = "profiles"
urlpatterns = [
    path("", views.ProfileListView.as_view(), name="list"),
    path("<int:pk>/", views.ProfileDetailView.as_view(), name="detail"),
]

# The review queue of probabilistic matching.
from profiles import views_review  # noqa: E402

urlpatterns += [
    path("review/", views_review.ReviewQueueView.as_view(), name="review"),
    path("review/<int:pk>/decide/", views_review.CandidateDecideView.as_view(), name="review-decide"),
]
