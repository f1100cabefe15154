from cdp.core.views import FilteredListView
from segments import selectors
from segments.filters import SegmentFilter


class SegmentListView(FilteredListView):
    template_name = "segments/segment_list.html"
    filterset_class = SegmentFilter
    permission_required = "segments.view_segment"

    def get_queryset(self):
        return selectors.segments_with_sizes()
