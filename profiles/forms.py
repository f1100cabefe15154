"""Forms of the profiles UI. The list page's search form is ProfileFilter's own form (profiles.filters)."""
