"""Teams' per-user daily activity report: an aggregate signal beside the meetings table.

One row per user per report day, from Microsoft Graph
``getTeamsUserActivityUserDetail(date=...)``. It does not count meeting instances (the
``meetings`` table does, from call records); it shows who used Teams meetings and
calls on a day, and whether the tenant conceals user names in reports.
"""

from __future__ import annotations

import pyarrow as pa

from workstyle.schemas.tables import TableSpec, register

_COUNTS = (
    "team_chat_messages",
    "private_chat_messages",
    "calls",
    "meetings",
    "meetings_organized",
    "meetings_attended",
    "adhoc_meetings_organized",
    "adhoc_meetings_attended",
    "scheduled_onetime_meetings_organized",
    "scheduled_onetime_meetings_attended",
    "scheduled_recurring_meetings_organized",
    "scheduled_recurring_meetings_attended",
    "audio_seconds",
    "video_seconds",
    "screen_share_seconds",
)

TEAMS_ACTIVITY = register(
    TableSpec(
        name="teams_activity",
        version=1,
        description="One row per user x day of Microsoft Teams user activity (Graph report).",
        fields=(
            pa.field("report_date", pa.date32(), nullable=False),
            # "User Id" (or the UPN when absent); hashed by Microsoft when names are concealed.
            pa.field("user", pa.string(), nullable=False),
            pa.field("user_principal_name", pa.string()),
            pa.field("last_activity_date", pa.date32()),
            pa.field("is_licensed", pa.bool_()),
            pa.field("is_deleted", pa.bool_()),
            *(pa.field(c, pa.int64()) for c in _COUNTS),
            pa.field("report_refresh_date", pa.date32()),
            # Whether the tenant hides user names in reports (None: setting unreadable).
            pa.field("names_concealed", pa.bool_()),
        ),
        key=("report_date", "user"),
        partition_by="report_date",
        person_columns=("user", "user_principal_name"),
        non_negative=_COUNTS,
    )
)
