from django.urls import path

from activation import views, views_offers

app_name = "activation"
urlpatterns = [
    path("", views.ActivationListView.as_view(), name="list"),
    path("offers/", views_offers.OfferListView.as_view(), name="offer-list"),
    path("offers/new/", views_offers.OfferCreateView.as_view(), name="offer-create"),
    path("offers/<int:pk>/", views_offers.OfferEditView.as_view(), name="offer-edit"),
    path("offers/<int:pk>/delete/", views_offers.OfferDeleteView.as_view(), name="offer-delete"),
    path("offers/preview/", views_offers.OfferPreviewView.as_view(), name="offer-preview"),
]
