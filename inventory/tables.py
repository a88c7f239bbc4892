"""The machine list, declared once."""

from core.tables import Column, Table
from inventory.models import MachineStatus, OsEdition

MACHINES = Table(
    columns={
        "id": Column("Id", "id", sort="id"),
        "hostname": Column("Host name", "hostname", sort="hostname"),
        "os_edition": Column("OS edition", "os_edition", choices=OsEdition.choices, sort="os_edition"),
        "status": Column("Status", "status", choices=MachineStatus.choices, sort="status"),
        "asset_tag": Column("Asset tag", "asset_tag"),
        "location": Column("Location", "location"),
        "owner": Column("Owner", "owner"),
    },
    page=("hostname", "os_edition", "status", "asset_tag", "location", "owner"),
    default_sort="hostname",
)
