"""The app's shared screen parts: the one package of itscm that imports streamlit.

A module per job: `context` (page setup, the menu), `cache` (the store handle, cached reads),
`filters` (the sidebar filters and periods), `signin` (who is using the app, and whether to show
them a control), `widgets` (figures, messages, downloads, charts, the Overview's tiles and tables),
`service_card`, `records`, `upload` and `changes` (the Services, Upload incidents and Changes
pages' parts: the card, the continuity record forms, the upload previews), `assets` (the Assets
page's parts, used as `ui.assets.<name>`). Pages use the
names below as `ui.<name>`; everything else stays inside the package.
"""

from itscm.ui import assets
from itscm.ui.cache import built_figure, cached_read, run_data_version, shared_read
from itscm.ui.changes import (
    change_preview_summary,
    changes_behind,
    changes_behind_table,
    ci_name_targets,
    committed_change_upload,
    read_change_preview,
    remember_change_commit,
)
from itscm.ui.context import NAVIGATION, entrypoint_setup, setup_page
from itscm.ui.filters import downtime_share_caption, events_caption, filter_scope_caption
from itscm.ui.inventory import explain_no_match
from itscm.ui.pickers import search_selectbox
from itscm.ui.records import new_service_form
from itscm.ui.service_card import service_card
from itscm.ui.signin import require_role, sign_in_configured
from itscm.ui.upload import (
    TIME_ZONES,
    committed_upload,
    committed_upload_summary,
    read_upload_preview,
    remember_commit,
    service_choices,
    upload_preview_summary,
)
from itscm.ui.widgets import (
    chart,
    confirmed_undo,
    download_csv,
    explain_empty,
    gap_table,
    measure_head,
    money,
    pct,
    plain,
    plot,
    posture_tiles,
    previous_period_caption,
    rerun_with_message,
    show_message,
    unit_table,
)

__all__ = [
    "NAVIGATION",
    "TIME_ZONES",
    "assets",
    "built_figure",
    "cached_read",
    "change_preview_summary",
    "changes_behind",
    "changes_behind_table",
    "chart",
    "ci_name_targets",
    "committed_change_upload",
    "committed_upload",
    "committed_upload_summary",
    "confirmed_undo",
    "download_csv",
    "downtime_share_caption",
    "entrypoint_setup",
    "events_caption",
    "explain_empty",
    "explain_no_match",
    "filter_scope_caption",
    "gap_table",
    "measure_head",
    "money",
    "new_service_form",
    "pct",
    "plain",
    "plot",
    "posture_tiles",
    "previous_period_caption",
    "read_change_preview",
    "read_upload_preview",
    "remember_change_commit",
    "remember_commit",
    "require_role",
    "rerun_with_message",
    "run_data_version",
    "search_selectbox",
    "service_card",
    "service_choices",
    "setup_page",
    "shared_read",
    "show_message",
    "sign_in_configured",
    "unit_table",
    "upload_preview_summary",
]
