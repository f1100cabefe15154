def personal_data_export(profile) -> dict:
    return {"segment_memberships": [
        {"segment": m.segment.name, "entered_at": m.entered_at.isoformat(),
         "exited_at": m.exited_at and m.exited_at.isoformat()}
        for m in profile.segment_memberships.select_related("segment").order_by("entered_at")]}


def personal_data_erase(profile) -> int:
    deleted, _ = profile.segment_memberships.all().delete()
    return deleted
