"""An OpenLDAP directory of the tests' own: ``slapd`` in a temporary folder, on spare ports of
127.0.0.1, with users, role groups and a certificate authority made for it.

The configuration is a ``slapd.d`` made with ``slapadd -n0`` (mdb database; schemas core,
cosine, inetorgperson and nis, and ``ldif/ad-account.ldif`` for the two Active Directory
attributes of the documented user filter; TLS from a CA made here with ``openssl``). The server listens on
``ldap://`` (where StartTLS is offered) and ``ldaps://``. The shared system directory, if any,
is never touched.
"""

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from core.tests.stack import free_port, port_open, wait_for

SLAPD = Path(os.environ.get("PORTAL_TEST_SLAPD", "/usr/sbin/slapd"))
SLAPADD = SLAPD.with_name("slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMAS = tuple(SCHEMA_DIR / f"{name}.ldif" for name in ("core", "cosine", "inetorgperson", "nis")) + (
    Path(__file__).parent / "ldif" / "ad-account.ldif",
)
MODULE_DIR = Path("/usr/lib/ldap")

SUFFIX = "dc=example,dc=com"
PEOPLE = f"ou=People,{SUFFIX}"
GROUPS = f"ou=Groups,{SUFFIX}"
ROOT_DN = f"cn=root,{SUFFIX}"
ROOT_PASSWORD = "root-secret"
BIND_DN = f"cn=portal-reader,ou=Services,{SUFFIX}"
BIND_PASSWORD = "reader-secret"
GROUP_DNS = {role: f"cn=portal-{role}s,{GROUPS}" for role in ("admin", "requester", "auditor")}
PASSWORD = "directory-pw-1"

# uid: (given name, surname, extra attributes). Everyone's password is PASSWORD. Each has the
# Active Directory attributes too: sAMAccountName (the uid) and userAccountControl, 512 for a
# normal account, 514 with the disabled bit (2).
USERS = {
    "ada": ("Ada", "Admin", {}),
    "rob": ("Rob", "Requester", {}),
    "aud": ("Aud", "Auditor", {}),
    "nomad": ("No", "Mad", {}),
    # A disabled account: "description: disabled" for filters on uid, the bit for the AD filter.
    "dis": ("Dis", "Abled", {"description": "disabled", "userAccountControl": "514"}),
}
# The starting membership of each role group; "dis" is in all of them (and stays refused).
MEMBERS = {"admin": ["ada", "dis"], "requester": ["rob", "dis"], "auditor": ["aud", "dis"]}


def user_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def missing_tools() -> str:
    """Why the directory cannot be started here, or '' when it can."""
    for tool in (SLAPD, SLAPADD):
        if not tool.exists():
            return f"{tool} is missing (apt-get install slapd)"
    for tool in ("ldapmodify", "openssl"):
        if shutil.which(tool) is None:
            return f"{tool} is missing (apt-get install ldap-utils openssl)"
    return ""


def _run(args, **kwargs):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({result.returncode}):\n{result.stderr}{result.stdout}")
    return result


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate authority: (certificate, key)."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN=Portal test CA {name}",
          "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    return cert, key


def make_server_certificate(folder: Path, ca: tuple[Path, Path]) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost signed by ``ca``: (certificate, key)."""
    cert, key, request, extensions = (folder / n for n in ("server.crt", "server.key", "server.csr", "server.ext"))
    _run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", key, "-out", request, "-subj", "/CN=localhost"])
    extensions.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                          "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n")
    _run(["openssl", "x509", "-req", "-in", request, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
          "-out", cert, "-days", "2", "-extfile", extensions])
    return cert, key


def config_ldif(folder: Path, server_cert: Path, server_key: Path, ca_cert: Path) -> str:
    schemas = "".join(f"include: file://{path}\n\n" for path in SCHEMAS)
    return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {folder / "slapd.pid"}
olcTLSCACertificateFile: {ca_cert}
olcTLSCertificateFile: {server_cert}
olcTLSCertificateKeyFile: {server_key}

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_DIR}
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}\
dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcRootDN: {ROOT_DN}
olcRootPW: {ROOT_PASSWORD}
olcDbDirectory: {folder / "data"}
olcDbIndex: objectClass eq
olcDbIndex: uid,member eq
olcAccess: {{0}}to attrs=userPassword by anonymous auth by * none
olcAccess: {{1}}to * by users read by * none
"""


def data_ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
        *(f"dn: {ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou[3:]}\n"
          for ou in ("ou=People", "ou=Groups", "ou=Services")),
        f"dn: {BIND_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\n"
        f"cn: portal-reader\nuserPassword: {BIND_PASSWORD}\n",
    ]
    for uid, (given, surname, extra) in USERS.items():
        attributes = {"sAMAccountName": uid, "userAccountControl": "512", **extra}
        lines = [f"dn: {user_dn(uid)}", "objectClass: inetOrgPerson", "objectClass: portalTestAdAccount",
                 f"uid: {uid}", f"cn: {given} {surname}", f"givenName: {given}", f"sn: {surname}",
                 f"mail: {uid}@example.com", f"userPassword: {PASSWORD}"]
        lines += [f"{name}: {value}" for name, value in attributes.items()]
        entries.append("\n".join(lines) + "\n")
    for role, dn in GROUP_DNS.items():
        members = "".join(f"member: {user_dn(uid)}\n" for uid in MEMBERS[role])
        entries.append(f"dn: {dn}\nobjectClass: groupOfNames\ncn: {dn[3:dn.index(',')]}\n{members}")
    return "\n".join(entries)


class Slapd:
    """One slapd with its data, configuration and certificates in a temporary folder.

    ``ldap_uri`` and ``ldaps_uri`` are where it listens; ``ca_cert`` signs its certificate and
    ``wrong_ca_cert`` does not. ``stop()`` and ``start()`` keep the data.
    """

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="portal-test-slapd-"))
        self.port, self.tls_port = free_port(), free_port()
        self.ldap_uri = f"ldap://127.0.0.1:{self.port}"
        self.ldaps_uri = f"ldaps://127.0.0.1:{self.tls_port}"
        self.process = None
        certs = self.folder / "certs"
        certs.mkdir()
        ca = make_ca(certs, "ca")
        self.ca_cert = ca[0]
        self.wrong_ca_cert = make_ca(certs, "wrong-ca")[0]
        server_cert, server_key = make_server_certificate(certs, ca)
        (self.folder / "data").mkdir()
        config_dir = self.folder / "slapd.d"
        config_dir.mkdir()
        (self.folder / "config.ldif").write_text(config_ldif(self.folder, server_cert, server_key, self.ca_cert))
        (self.folder / "data.ldif").write_text(data_ldif())
        _run([SLAPADD, "-n0", "-F", config_dir, "-l", self.folder / "config.ldif"])
        _run([SLAPADD, "-F", config_dir, "-b", SUFFIX, "-l", self.folder / "data.ldif"])
        self.start()

    def start(self) -> None:
        if self.running:
            return
        # -d keeps slapd in the foreground, so it is this process's child and is stopped by pid.
        # As root it simply runs as root: it only reads and writes this folder.
        self.log = open(self.folder / "slapd.log", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [str(SLAPD), "-F", str(self.folder / "slapd.d"), "-h", f"{self.ldap_uri}/ {self.ldaps_uri}/",
             "-d", "none"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for(lambda: self._listening_or_dead(), timeout=20, what="slapd to listen")
        if self.process.poll() is not None:
            raise RuntimeError(f"slapd exited ({self.process.returncode}):\n{self.log_text()}")

    def _listening_or_dead(self) -> bool:
        return self.process.poll() is not None or (port_open(self.port) and port_open(self.tls_port))

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if not self.running:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.log.close()
        wait_for(lambda: not port_open(self.port), timeout=5, what="slapd's port to close")

    def log_text(self) -> str:
        return (self.folder / "slapd.log").read_text(errors="replace")

    def modify(self, ldif: str) -> None:
        """Apply ``ldif`` with the real ``ldapmodify``, bound as the directory's root."""
        _run(["ldapmodify", "-x", "-H", self.ldap_uri, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
             input=ldif, env={**os.environ, "LDAPTLS_REQCERT": "never"})

    def set_members(self, role: str, uids: list[str]) -> None:
        members = "".join(f"member: {user_dn(uid)}\n" for uid in uids)
        self.modify(f"dn: {GROUP_DNS[role]}\nchangetype: modify\nreplace: member\n{members}-\n")

    def reset(self) -> None:
        """Back to the starting data, for the next test."""
        self.start()
        for role, uids in MEMBERS.items():
            self.set_members(role, uids)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

