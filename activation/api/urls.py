from django.urls import path
from rest_framework.routers import DefaultRouter

from activation.api.offers import OfferViewSet
from activation.api.personalize import PersonalizeView
from activation.api.views import ActivationViewSet, DeliveryViewSet, DestinationViewSet, SyncViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("destinations", DestinationViewSet, basename="destination")
router.register("activations", ActivationViewSet, basename="activation")
router.register("syncs", SyncViewSet, basename="sync")
router.register("deliveries", DeliveryViewSet, basename="delivery")
router.register("offers", OfferViewSet, basename="offer")

# The personalization API first: websites call it for every page they show (see cdp/urls.py).
urlpatterns = [path("personalize", PersonalizeView.as_view(), name="personalize"), *router.urls]
