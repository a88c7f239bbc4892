"""What the administrators did, told through the real services at the moments it happened.

At the head office (Windows Server 2003, the article's era) transfers go through every state
of the article's workflow: filed, approved by a second administrator, the CAL removed from
the source, CSC calls logged (one denied, one fulfilled with a reissued pack, one still
open while a target runs on its temporary CAL), rejected and cancelled. Each CSC call is
made after the removal of every transfer it covers was confirmed. On the modern servers,
CALs are revoked in RD Licensing Manager (rule 12), some recorded a few days late.

``steps`` returns ``(moment, callable)`` pairs; ``history.History.replay`` runs each with the
clock set to its moment, in time order with the rest of the history.
"""

from datetime import datetime, timedelta
from functools import partial

from inventory.models import ClientMachine
from licensing.management.seed.world import DAY, HQ, World
from licensing.models import License, LicenseProgram, RemovalMethod, WindowsVersion
from licensing.services import transfers as tsvc
from licensing.services.licenses import license_issue_temporary
from licensing.services.reissue import reissue_deny, reissue_install, reissue_log_call
from licensing.services.revocations import license_revoke

# name, filed by, filed (days before today, hour of day), reason, then (action, days before today, hour)
TRANSFERS = (
    ("refresh-1", "rita.requester", (34, 9.5), "Hardware refresh: PC replaced",
     (("approve", 33, 10), ("confirm", 31, 15))),
    ("refresh-2", "ana.admin", (33, 11), "Hardware refresh: PC replaced",
     (("approve", 32, 9), ("confirm", 30, 16))),
    ("refresh-3", "rita.requester", (24, 10), "Hardware refresh: motherboard failed",
     (("approve", 23, 14), ("confirm", 21, 11))),
    ("lab-pc", "rita.requester", (15, 13), "Move the CAL to the new lab PC", (("reject", 14, 9.5),)),
    ("returned", "rita.requester", (10, 10), "Replacement laptop", (("cancel", 9, 16),)),
    ("laptop-1", "rita.requester", (8, 9), "Laptop replaced under warranty",
     (("approve", 7, 10), ("confirm", 5, 15))),
    ("laptop-2", "ana.admin", (7, 14), "Laptop replaced under warranty",
     (("approve", 6, 9), ("confirm", 4, 11))),
    ("kiosk", "ana.admin", (5, 10), "Reception kiosk replaced", (("approve", 4, 15), ("confirm", 2, 10))),
    ("desk-1", "ana.admin", (3, 9), "Hot desk PC replaced", (("approve", 2, 16),)),
    ("desk-2", "rita.requester", (2, 15), "Hot desk PC replaced", (("approve", 1, 11),)),
    ("new-hire", "rita.requester", (1, 14), "PC handed on to a new starter", ()),
)
NOTES = {
    "reject": "The lab PC is still in use; file it again when it is replaced.",
    "cancel": "The replacement laptop went back to the supplier.",
}
# (days before today, hour), the transfers covered, CSC contact, representative, confirmation, outcome
CALLS = (
    ((29, 10), ("refresh-1", "refresh-2"), 0, "M. Alvarez", "TSL-3921-1180",
     ("deny", 27, 15, "The CSC found no Select agreement under that number; call again with the enrolment.")),
    ((12, 11), ("refresh-1", "refresh-2", "refresh-3"), 1, "J. Patel", "TSL-4471-2209", ("install", 9, 10)),
    ((3, 10), ("laptop-1", "laptop-2"), 1, "S. O'Brien", "TSL-5120-0087", None),
)
LOGGED_AFTER = timedelta(minutes=20)  # a call is logged once it has ended
WAITING_ON_TEMPORARY = ("laptop-2", 3, 11)  # its target runs on a temporary CAL while the CSC call is open
REISSUED_KEY_PACK_ID = 90_001


class Stories:
    def __init__(self, world: World, *, servers: list, contacts: list, staff: dict):
        self.world = world
        self.servers = servers
        self.contacts = contacts
        self.staff = staff
        self.transfers = {}
        self.calls = {}

    def moment(self, days: float, hour: float) -> datetime:
        return self.world.today - days * DAY + timedelta(minutes=round(hour * 60))

    def steps(self) -> list[tuple[datetime, object]]:
        steps = []
        cast = zip(TRANSFERS, self.world.transfer_sources, self.world.transfer_targets, strict=True)
        for (name, by, filed, reason, later), source, target in cast:
            steps.append((self.moment(*filed), partial(self._file, name, by, source, target, reason)))
            for action, days, hour in later:
                steps.append((self.moment(days, hour), partial(self._act, name, action)))
        for index, ((days, hour), names, contact, representative, confirmation, outcome) in enumerate(CALLS):
            called_at = self.moment(days, hour)
            steps.append((called_at + LOGGED_AFTER, partial(
                self._call, index, called_at, names, contact, representative, confirmation)))
            if outcome is not None:
                steps.append((self.moment(outcome[1], outcome[2]), partial(self._close, index, outcome)))
        name, days, hour = WAITING_ON_TEMPORARY
        steps.append((self.moment(days, hour), partial(self._temporary, name)))
        for r in self.world.revocations:
            steps.append((r.recorded_at, partial(self._revoke, r)))
        steps.sort(key=lambda step: step[0])
        return steps

    def _file(self, name, by, source, target, reason):
        w = self.world
        self.transfers[name] = tsvc.transfer_file(
            license=License.objects.get(pk=w.cals[source].pk),
            target_machine=ClientMachine.objects.get(pk=w.machines[target].pk),
            reason=reason, actor=self.staff[by],
        )

    def _act(self, name, action):
        transfer = self.transfers[name]
        ana, ben = self.staff["ana.admin"], self.staff["ben.admin"]
        if action == "approve":
            transfer = tsvc.transfer_approve(transfer=transfer, actor=ben)
        elif action == "confirm":
            transfer = tsvc.transfer_confirm_removal(transfer=transfer, actor=ana,
                                                     method=RemovalMethod.REGISTRY_KEY_DELETED)
        elif action == "reject":
            transfer = tsvc.transfer_reject(transfer=transfer, actor=ben, note=NOTES["reject"])
        else:
            transfer = tsvc.transfer_cancel(transfer=transfer, actor=transfer.requested_by, note=NOTES["cancel"])
        self.transfers[name] = transfer

    def _call(self, index, called_at, names, contact, representative, confirmation):
        self.calls[index] = reissue_log_call(
            actor=self.staff["ana.admin"], called_at=called_at, license_server=self.servers[HQ],
            product_version=WindowsVersion.WINDOWS_SERVER_2003, license_program=LicenseProgram.SELECT,
            quantity_requested=len(names), transfers=[self.transfers[n] for n in names],
            csc_contact=self.contacts[contact], representative=representative, confirmation_number=confirmation,
        )

    def _close(self, index, outcome):
        call = self.calls[index]
        if outcome[0] == "deny":
            reissue_deny(reissue_request=call, actor=self.staff["ana.admin"], note=outcome[3])
            return
        reissue_install(reissue_request=call, actor=self.staff["ben.admin"], key_pack_id=REISSUED_KEY_PACK_ID,
                        total_licenses=call.quantity_requested, description="Reissued after hardware refresh")

    def _temporary(self, name):
        license_issue_temporary(machine=self.transfers[name].target_machine, license_server=self.servers[HQ],
                                product_version=WindowsVersion.WINDOWS_SERVER_2003, actor=self.staff["ana.admin"])

    def _revoke(self, planned):
        actor = self.staff["ben.admin" if planned.cal % 2 else "ana.admin"]
        license_revoke(license=License(pk=self.world.cals[planned.cal].pk), actor=actor, note=planned.note,
                       revoked_at=planned.revoked_at)
