"""The demo's world as plain data, drawn from one random generator: one seed, one world.

Every object carries the moment it came to be, and the rules of DOMAIN.md hold along the
way, not only at the end: a license server exists before its key packs, a key pack is
installed and a machine is added before a CAL of theirs is issued, a retired machine
received its CALs before it was retired, a server holds key packs of its own Windows version
or older (rule 13), and a key pack never issues more than its total (rule 1). The plan also
casts the stories the services tell later (``stories``): the transfers, the revocations
within their quota (rule 12) and one server whose temporary CALs end faster than seats are
free (rule 14).
"""

import random
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from inventory.models import OS_EDITIONS_WITH_BUILTIN_CAL, OsEdition
from licensing.choices import VERSIONS_WITH_BUILTIN_PRO_CAL, LicenseProgram
from licensing.choices import WindowsVersion as V
from licensing.rules import QUOTA_HOLD_DAYS, revoke_quota

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
HISTORY_DAYS = 4 * 365
TEMPORARY_DAYS = 90


@dataclass(frozen=True)
class Scale:
    key_packs: int
    machines: int
    licenses: int
    audit_events: int
    pack_sizes: tuple[int, ...]
    per_user_sizes: tuple[int, ...]
    revocations: int  # each revocation story is told this many times


SCALES = {
    "small": Scale(key_packs=28, machines=300, licenses=420, audit_events=0, pack_sizes=(10, 20, 25, 25, 50),
                   per_user_sizes=(5, 10, 20), revocations=1),
    "large": Scale(key_packs=2_000, machines=100_000, licenses=150_000, audit_events=1_000_000,
                   pack_sizes=(10, 20, 25, 50, 100, 150, 200, 250, 300), per_user_sizes=(5, 10, 20, 25, 50),
                   revocations=4),
}


@dataclass(frozen=True)
class ServerSpec:
    name: str
    version: str
    location: str
    weight: int  # its share of the key packs
    older: str  # the version of its older packs
    per_user: float  # the share of per-user packs among the packs bought later
    anchors: tuple  # (product, per user) of the first packs it was given

    @property
    def builtin_cal(self) -> bool:
        return self.version in VERSIONS_WITH_BUILTIN_PRO_CAL


SERVERS = (
    ServerSpec("TSLS-HQ-01", V.WINDOWS_SERVER_2003, "Head office, rack B4", 26, V.WINDOWS_2000_SERVER, 0.0,
               ((V.WINDOWS_SERVER_2003, False), (V.WINDOWS_2000_SERVER, False))),
    ServerSpec("TSLS-BRANCH-01", V.WINDOWS_SERVER_2003, "Leeds branch", 14, V.WINDOWS_2000_SERVER, 0.0,
               ((V.WINDOWS_SERVER_2003, False),)),
    ServerSpec("TSLS-DC2-01", V.WINDOWS_SERVER_2008_R2, "Second data centre", 20, V.WINDOWS_SERVER_2008, 0.1,
               ((V.WINDOWS_SERVER_2008_R2, False), (V.WINDOWS_SERVER_2008_R2, True))),
    ServerSpec("TSLS-CLOUD-01", V.WINDOWS_SERVER_2016, "Azure VM, West Europe", 18, V.WINDOWS_SERVER_2012_R2, 0.1,
               ((V.WINDOWS_SERVER_2016, False), (V.WINDOWS_SERVER_2016, True))),
    ServerSpec("TSLS-CLOUD-02", V.WINDOWS_SERVER_2019, "Azure VM, North Europe", 18, V.WINDOWS_SERVER_2016, 0.1,
               ((V.WINDOWS_SERVER_2019, False), (V.WINDOWS_SERVER_2016, False), (V.WINDOWS_SERVER_2019, True))),
    ServerSpec("TSLS-RDS-01", V.WINDOWS_SERVER_2022, "Remote Desktop farm, London", 4, V.WINDOWS_SERVER_2019, 0.4,
               ((V.WINDOWS_SERVER_2022, False), (V.WINDOWS_SERVER_2022, True), (V.WINDOWS_SERVER_2019, True))),
)
HQ = 0  # the article's transfers happen here
RDS = 5  # its collector sends a snapshot, per-user CALs included; its clients hold no temporary CALs
SHORTFALL = (4, V.WINDOWS_SERVER_2019)  # temporary CALs that end faster than seats are free (rule 14)
# Rule 12 on the modern servers: (server, product, revocations whose place has freed, places still held).
REVOCATIONS = ((2, V.WINDOWS_SERVER_2008_R2, 2, 3), (3, V.WINDOWS_SERVER_2016, 1, 2),
               (4, V.WINDOWS_SERVER_2016, 1, 1), (5, V.WINDOWS_SERVER_2022, 0, 1))
REVOCATION_NOTES = ("PC re-imaged; its old CAL revoked to free the seat.", "Machine decommissioned.",
                    "Duplicate CAL after a motherboard swap.", "Kiosk replaced; seat reclaimed.")
TRANSFERS = 11  # the cast of ``stories.TRANSFERS``
TEMPORARY_AGES = (5, 20, 45, 80, 84, 88, 120, 200)  # days: some end within 14 days, some have expired

OS_WEIGHTS = [
    (OsEdition.WINDOWS_XP_HOME, 8), (OsEdition.WINDOWS_XP_PROFESSIONAL, 10),
    (OsEdition.WINDOWS_2000_PROFESSIONAL, 4), (OsEdition.WINDOWS_2000_SERVER, 1),
    (OsEdition.NT4_WORKSTATION, 2), (OsEdition.WINDOWS_9X, 2), (OsEdition.WINDOWS_CE, 5),
    (OsEdition.WINDOWS_VISTA, 3), (OsEdition.WINDOWS_7, 14), (OsEdition.WINDOWS_8, 4),
    (OsEdition.WINDOWS_10, 30), (OsEdition.WINDOWS_11, 15), (OsEdition.OTHER, 2),
]
PROGRAM_WEIGHTS = [
    (LicenseProgram.SELECT, 30), (LicenseProgram.OPEN, 25), (LicenseProgram.ENTERPRISE_AGREEMENT, 20),
    (LicenseProgram.RETAIL, 10), (LicenseProgram.CAMPUS, 5), (LicenseProgram.SCHOOL, 4),
    (LicenseProgram.SERVICE_PROVIDER, 3), (LicenseProgram.OTHER, 3),
]
SITES = ["London", "Leeds", "Dublin", "Frankfurt", "Madrid", "Boston", "Toronto", "Singapore"]


def weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights, k=1)[0]


@dataclass
class Pack:
    server: int
    product: str
    per_user: bool
    total: int
    program: str
    agreement: str
    at: datetime  # installed
    key_pack_id: int = 0
    pk: int | None = None


@dataclass
class Machine:
    hostname: str
    os_edition: str
    hardware_id: str
    asset_tag: str
    location: str
    owner: str
    at: datetime  # added to the portal
    retired_at: datetime | None
    pk: int | None = None


@dataclass(slots=True)
class Cal:
    machine: int
    server: int
    product: str
    pack: int | None  # None: a temporary CAL
    at: datetime  # issued
    expired: bool = False  # a temporary CAL past its 90 days
    license_id: int = 0
    pk: int | None = None

    @property
    def expires_at(self) -> datetime | None:
        return None if self.pack is not None else self.at + TEMPORARY_DAYS * DAY


@dataclass(frozen=True)
class PlannedRevocation:
    cal: int
    revoked_at: datetime
    recorded_at: datetime
    note: str


class World:
    def __init__(self, *, scale: Scale, seed: int, today: datetime):
        self.rng = random.Random(seed)
        self.scale = scale
        self.today = today
        self.start = today - HISTORY_DAYS * DAY
        self.server_at = [self.start + timedelta(hours=9, minutes=20 * i) for i in range(len(SERVERS))]
        self.packs = self._packs()
        self.machines = self._machines()
        self.cals: list[Cal] = []
        self._cals()
        self.transfer_sources, self.transfer_targets = self._transfer_cast()
        self.revocations = self._revocations()

    # -- moments
    def between(self, lo: datetime, hi: datetime) -> datetime:
        return (lo + (hi - lo) * self.rng.random()).replace(microsecond=0)

    def office(self, day: datetime) -> datetime:
        """A moment in office hours (08:00 to 17:00 UTC) of ``day``."""
        opening = datetime.combine(day.date(), time(8), tzinfo=UTC)
        return opening + timedelta(seconds=self.rng.randrange(9 * 3600))

    # -- key packs: the anchors first, then bought over the years, up to four months ago
    def _packs(self) -> list[Pack]:
        weights = sum(spec.weight for spec in SERVERS)
        packs = []
        for index, spec in enumerate(SERVERS):
            count = max(len(spec.anchors) + 1, round(self.scale.key_packs * spec.weight / weights))
            opened = self.server_at[index]
            for n in range(count):
                if n < len(spec.anchors):
                    product, per_user = spec.anchors[n]
                    at = self.office(opened + (n + 1) * DAY)
                else:
                    product = spec.version if self.rng.random() < 0.7 else spec.older
                    per_user = self.rng.random() < spec.per_user
                    at = self.office(self.between(opened + 10 * DAY, self.today - 120 * DAY))
                sizes = self.scale.per_user_sizes if per_user else self.scale.pack_sizes
                packs.append(Pack(
                    server=index, product=product, per_user=per_user, total=self.rng.choice(sizes),
                    program=weighted(self.rng, PROGRAM_WEIGHTS),
                    agreement=f"{self.rng.randint(10_000_000, 99_999_999)}", at=at,
                ))
        packs.sort(key=lambda p: p.at)
        for i, pack in enumerate(packs):
            pack.key_pack_id = 10_000 + i
        return packs

    # -- machines: most in the first month's inventory, the rest added until a month ago
    def _machines(self) -> list[Machine]:
        first = self.start + DAY
        times = sorted(
            self.between(first, first + 30 * DAY) if self.rng.random() < 0.7
            else self.between(first + 30 * DAY, self.today - 30 * DAY)
            for _ in range(self.scale.machines)
        )
        machines = []
        for i, at in enumerate(times):
            site = self.rng.choice(SITES)
            retired_at = None
            if self.rng.random() < 0.03:
                retired_at = self.between(max(at + 20 * DAY, self.today - 300 * DAY), self.today - DAY)
            machines.append(Machine(
                hostname=f"{site[:3].upper()}-WS-{i:06d}", os_edition=weighted(self.rng, OS_WEIGHTS),
                hardware_id=f"{self.rng.getrandbits(80):020x}", asset_tag=f"AT{100000 + i}", location=site,
                owner=f"user{self.rng.randint(1, 9999):04d}", at=at, retired_at=retired_at,
            ))
        return machines

    # -- CALs
    def _cals(self) -> None:
        """Per server and product: temporary CALs first planned, then permanent CALs that leave
        free seats for every machine on a temporary CAL (no shortfall), except on ``SHORTFALL``."""
        groups: dict[tuple[int, str], list[int]] = {}
        for i, pack in enumerate(self.packs):
            if not pack.per_user:
                groups.setdefault((pack.server, pack.product), []).append(i)
        self.groups = groups
        capacity = {g: sum(self.packs[i].total for i in packs) for g, packs in groups.items()}
        ordinary = [g for g in groups if g != SHORTFALL and g[0] != RDS]
        wanted = max(16, self.scale.licenses // 30)
        ordinary_capacity = sum(capacity[g] for g in ordinary)
        ages = {g: [self.rng.choice(TEMPORARY_AGES) for _ in range(round(wanted * capacity[g] / ordinary_capacity))]
                for g in ordinary}
        self.shortfall_free = max(3, capacity[SHORTFALL] // 1000)
        ages[SHORTFALL] = [self.rng.randint(70, 86)  # ending in 4 to 20 days
                           for _ in range(self.shortfall_free + max(3, self.shortfall_free // 2))]
        shortfall_permanent = capacity[SHORTFALL] - self.shortfall_free
        fill = ((self.scale.licenses - sum(len(a) for a in ages.values()) - shortfall_permanent)
                / sum(capacity[g] for g in groups if g != SHORTFALL))
        self.pools = {}
        for g, packs in groups.items():
            if g == SHORTFALL:
                count = shortfall_permanent
            else:
                active = sum(1 for age in ages.get(g, ()) if age < TEMPORARY_DAYS)
                reserve = active + max(2, capacity[g] // 50)
                count = max(0, min(int(capacity[g] * fill * self.rng.uniform(0.85, 1.15)), capacity[g] - reserve))
            self._permanent(g, packs, count)
        for g, group_ages in ages.items():
            self._temporary(g, group_ages)
        self.cals.sort(key=lambda cal: cal.at)
        for i, cal in enumerate(self.cals):
            cal.license_id = i + 1

    def _pool(self, product: str) -> deque:
        """Machines in a random order for one product: a machine is taken for a product at most
        once (rule 4, rule 5)."""
        if product not in self.pools:
            order = list(range(len(self.machines)))
            self.rng.shuffle(order)
            self.pools[product] = deque(order)
        return self.pools[product]

    def take(self, product: str, moment_for, tries: int = 60) -> tuple[int, datetime] | None:
        """The next machine of ``product``'s pool for which ``moment_for(machine)`` gives a
        moment (None: it does not fit); the machines passed over go to the back of the pool."""
        pool = self._pool(product)
        for _ in range(min(tries, len(pool))):
            index = pool.popleft()
            moment = moment_for(self.machines[index])
            if moment is not None:
                return index, moment
            pool.append(index)
        return None

    def _permanent(self, group, packs: list[int], count: int) -> None:
        server, product = group
        builtin = SERVERS[server].builtin_cal
        seats = [[i, self.packs[i].total] for i in packs]
        for _ in range(count):
            while seats and seats[0][1] == 0:
                seats.pop(0)
            pack = self.packs[seats[0][0]]

            def issue_moment(machine, pack=pack):
                if builtin and machine.os_edition in OS_EDITIONS_WITH_BUILTIN_CAL:
                    return None  # rule 3
                lo = max(pack.at, machine.at) + HOUR
                hi = machine.retired_at - HOUR if machine.retired_at else self.today - DAY
                return self.between(lo, hi) if lo < hi else None

            taken = self.take(product, issue_moment)
            if taken is None:
                return
            seats[0][1] -= 1
            self.cals.append(Cal(machine=taken[0], server=server, product=product, pack=seats[0][0], at=taken[1]))

    def _temporary(self, group, ages: list[int]) -> None:
        server, product = group
        builtin = SERVERS[server].builtin_cal
        for age in ages:
            issued = self.office(self.today - age * DAY)

            def fits(machine, issued=issued):
                if machine.retired_at or (builtin and machine.os_edition in OS_EDITIONS_WITH_BUILTIN_CAL):
                    return None
                return issued if machine.at + HOUR < issued else None

            taken = self.take(product, fits)
            if taken is not None:
                self.cals.append(Cal(machine=taken[0], server=server, product=product, pack=None, at=issued,
                                     expired=age >= TEMPORARY_DAYS))

    # -- the stories' cast
    def _transfer_cast(self) -> tuple[list[int], list[int]]:
        """Sources: the head office's permanent 2003 CALs of machines in service, issued more
        than two months ago. Targets: machines in service that never held a 2003 CAL."""
        product = V.WINDOWS_SERVER_2003
        cutoff = self.today - 60 * DAY
        sources = [i for i, cal in enumerate(self.cals)
                   if cal.server == HQ and cal.product == product and cal.pack is not None and cal.at < cutoff
                   and self.machines[cal.machine].retired_at is None]
        sources = self.rng.sample(sources, TRANSFERS)
        targets = []
        for _ in range(TRANSFERS):
            taken = self.take(product, lambda m: cutoff if (
                m.retired_at is None and m.at < cutoff and m.os_edition not in OS_EDITIONS_WITH_BUILTIN_CAL) else None,
                tries=len(self.machines))
            if taken is None:
                raise RuntimeError("no machine is left to receive a transfer")
            targets.append(taken[0])
        return sources, targets

    def installed_by(self, group, moment: datetime) -> int:
        return sum(self.packs[i].total for i in self.groups.get(group, ()) if self.packs[i].at <= moment)

    def _revocations(self) -> list[PlannedRevocation]:
        """Revoked CALs whose place in the quota has freed (revoked more than 89 days ago) and
        ones that still hold it; at no moment more than the quota of the CALs installed then."""
        planned = []
        for server, product, freed, holding in REVOCATIONS:
            group = (server, product)
            candidates = [i for i, cal in enumerate(self.cals)
                          if (cal.server, cal.product) == group and cal.pack is not None]
            self.rng.shuffle(candidates)
            spans = [(100, 300)] * (freed * self.scale.revocations) + [(5, 80)] * (holding * self.scale.revocations)
            taken: list[PlannedRevocation] = []
            for low, high in spans:
                revoked_at = self.office(self.today - self.rng.randint(low, high) * DAY)
                recorded_at = min(revoked_at + self.rng.randrange(0, 3 * 86400) * timedelta(seconds=1),
                                  self.today - HOUR)
                cal = next((c for c in candidates if self.cals[c].at < revoked_at - DAY), None)
                if cal is None:
                    continue
                attempt = PlannedRevocation(cal, revoked_at, recorded_at, self.rng.choice(REVOCATION_NOTES))
                if self._within_quota(group, [*taken, attempt]):
                    candidates.remove(cal)
                    taken.append(attempt)
            planned += taken
        planned.sort(key=lambda r: r.recorded_at)
        return planned

    def _within_quota(self, group, revocations: list[PlannedRevocation]) -> bool:
        hold = QUOTA_HOLD_DAYS * DAY
        for r in revocations:
            held = sum(1 for o in revocations if o.revoked_at <= r.revoked_at < o.revoked_at + hold)
            if held > revoke_quota(self.installed_by(group, r.revoked_at)):
                return False
        return True
