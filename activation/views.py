from activation.filters import ActivationFilter
from activation.models import Activation
from cdp.core.views import FilteredListView


class ActivationListView(FilteredListView):
    template_name = "activation/activation_list.html"
    filterset_class = ActivationFilter
    permission_required = "activation.view_activation"

    def get_queryset(self):
        return Activation.objects.select_related("segment", "destination", "purpose")
