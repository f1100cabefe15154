"""UI routes of tracking plans, violations and transformations (included by ingestion/urls.py)."""

from django.urls import path

from ingestion import views_plans

urlpatterns = [
    path("plans/", views_plans.PlanIndexView.as_view(), name="plan-index"),
    path("<slug:slug>/plan/", views_plans.TrackingPlanView.as_view(), name="plan-edit"),
    path("<slug:slug>/plan/violations/", views_plans.ViolationsView.as_view(), name="plan-violations"),
    path("<slug:slug>/plan/replay/", views_plans.ReplayView.as_view(), name="plan-replay"),
    path("<slug:slug>/transformations/", views_plans.TransformationView.as_view(), name="transform-edit"),
    path("<slug:slug>/transformations/preview/", views_plans.TransformPreviewView.as_view(),
         name="transform-preview"),
]
