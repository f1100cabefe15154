from django.urls import path

from activation import views, views_offers

app_name = "activation"
urlpatterns = [
    path("", views.ActivationListView.as_view(), name="list"),
    path("new/", views.ActivationCreateView.as_view(), name="create"),
    path("<int:pk>/", views.ActivationDetailView.as_view(), name="detail"),
    path("<int:pk>/edit/", views.ActivationEditView.as_view(), name="edit"),
    path("<int:pk>/sync/", views.ActivationSyncView.as_view(), name="sync"),
    path("destinations/", views.DestinationListView.as_view(), name="destination-list"),
    path("destinations/new/", views.DestinationCreateView.as_view(), name="destination-create"),
    path("destinations/<int:pk>/", views.DestinationEditView.as_view(), name="destination-edit"),
    path("destinations/<int:pk>/test/", views.DestinationTestView.as_view(), name="destination-test"),
    path("syncs/", views.SyncListView.as_view(), name="sync-list"),
    path("deliveries/", views.DeliveryListView.as_view(), name="delivery-list"),
    path("deliveries/dead/", views.DeadLetterListView.as_view(), name="dead-letters"),
    path("deliveries/<int:pk>/resend/", views.DeliveryResendView.as_view(), name="delivery-resend"),
    path("offers/", views_offers.OfferListView.as_view(), name="offer-list"),
    path("offers/new/", views_offers.OfferCreateView.as_view(), name="offer-create"),
    path("offers/<int:pk>/", views_offers.OfferEditView.as_view(), name="offer-edit"),
    path("offers/<int:pk>/delete/", views_offers.OfferDeleteView.as_view(), name="offer-delete"),
    path("offers/preview/", views_offers.OfferPreviewView.as_view(), name="offer-preview"),
]
