from django.urls import include, path, re_path

from inventory import views as inventory_views
from licensing import views as licensing_views
from portal import views as portal_views

urlpatterns = [
    path("", portal_views.dashboard, name="dashboard"),
    # Licenses and key packs
    path("licenses/", licensing_views.LicenseListView.as_view(), name="license-list"),
    path("licenses/<int:pk>/", licensing_views.license_detail, name="license-detail"),
    path("key-packs/", licensing_views.KeyPackListView.as_view(), name="keypack-list"),
    path("key-packs/new/", licensing_views.keypack_new, name="keypack-new"),
    path("key-packs/<int:pk>/", licensing_views.keypack_detail, name="keypack-detail"),
    # Machines
    path("machines/", inventory_views.MachineListView.as_view(), name="machine-list"),
    path("machines/new/", inventory_views.machine_new, name="machine-new"),
    path("machines/suggest/", inventory_views.machine_suggestions, name="machine-suggestions"),
    path("machines/<int:pk>/", inventory_views.machine_detail, name="machine-detail"),
    path("machines/<int:pk>/issue/", inventory_views.machine_issue, name="machine-issue"),
    path("machines/<int:pk>/retire/", inventory_views.machine_retire, name="machine-retire"),
    # Transfers (the article's workflow)
    path("transfers/", licensing_views.TransferListView.as_view(), name="transfer-list"),
    path("transfers/new/", licensing_views.transfer_new, name="transfer-new"),
    path("transfers/<int:pk>/", licensing_views.transfer_detail, name="transfer-detail"),
    re_path(r"^transfers/(?P<pk>[0-9]+)/(?P<action>approve|reject|confirm-removal|cancel)/$",
            licensing_views.transfer_action, name="transfer-action"),
    # CSC reissue calls
    path("reissue-requests/", licensing_views.ReissueRequestListView.as_view(), name="reissuerequest-list"),
    path("reissue-requests/new/", licensing_views.reissuerequest_new, name="reissuerequest-new"),
    path("reissue-requests/<int:pk>/", licensing_views.reissuerequest_detail, name="reissuerequest-detail"),
    re_path(r"^reissue-requests/(?P<pk>[0-9]+)/(?P<action>install|deny|cancel)/$",
            licensing_views.reissuerequest_action, name="reissuerequest-action"),
    # Phone book, audit trail, reports
    path("csc-contacts/", licensing_views.CscContactListView.as_view(), name="csccontact-list"),
    path("csc-contacts/new/", licensing_views.csccontact_new, name="csccontact-new"),
    path("audit/", licensing_views.AuditEventListView.as_view(), name="audit-list"),
    path("reports/", licensing_views.reports, name="reports"),
    # Import of a license server's Export-Csv files
    path("imports/", include("licensing.import_urls")),
]
