from cdp.core.views import FilteredListView
from ingestion import selectors
from ingestion.filters import SourceFilter


class SourceListView(FilteredListView):
    template_name = "ingestion/source_list.html"
    filterset_class = SourceFilter
    permission_required = "ingestion.view_source"

    def get_queryset(self):
        return selectors.sources_with_stats()
