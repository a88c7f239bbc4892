"""Reports: their columns and rows (``base``), the catalog of reports (``catalog``) and the
CSV and XLSX writers (``writers``)."""

from licensing.reports.base import (
    LIST_ONLY_PARAMS,
    Column,
    InvalidFilters,
    Report,
    neutralise,
    parse_moment,
    since_until_filters,
)
from licensing.reports.catalog import (
    AUDIT_TRAIL,
    COMPLIANCE,
    DRIFT,
    LICENSES,
    REISSUE_REQUESTS,
    REPORTS,
    REVOCATIONS,
    TRANSFERS,
    get_report,
)

__all__ = [
    "AUDIT_TRAIL", "COMPLIANCE", "DRIFT", "LICENSES", "LIST_ONLY_PARAMS", "REISSUE_REQUESTS", "REPORTS", "REVOCATIONS",
    "TRANSFERS", "Column", "InvalidFilters", "Report", "get_report", "neutralise", "parse_moment",
    "since_until_filters",
]
