from rest_framework.routers import DefaultRouter

from activation.api.views import ActivationViewSet, DestinationViewSet

router = DefaultRouter()
router.include_root_view = False
router.register("destinations", DestinationViewSet, basename="destination")
router.register("activations", ActivationViewSet, basename="activation")

urlpatterns = router.urls
