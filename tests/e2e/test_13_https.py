"""HTTPS in front of the hub (docker-compose.https.yml), end to end, verification on.

The module turns the test stack into an HTTPS one as an admin would (the override file
and HTTPS_* in .env, `docker compose up -d --wait`) and puts the plain stack back
afterwards, as the other files know it. Mode `files` gets a certificate the test signs
with a CA it makes; mode `internal` is trusted through the root Caddy made, copied out of
its volume with the README's command. In both: log in, a cell over the kernel
websocket, a `%%ai` cell and the chat panel, every request and websocket verified
against that CA alone (no `verify=False`); plain HTTP redirects to HTTPS; every cookie
is Secure; the hub's own port is not published; the admin's rehearsal still runs. Mode
`acme` needs a public domain and Let's Encrypt, so here only Caddy's check of its
configuration runs (`caddy validate`).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aihub.https import INTERNAL_ROOT

from .browser import Browser
from .stack import run
from .test_02_ai import ASK_OLLAMA

HTTPS_FILES = ["docker-compose.https.yml"]
STANDIN_FILES = ["tests/standins/compose.https-standins.yml"]
DOMAIN = "localhost"
HTTPS_PORT, HTTP_PORT = 18443, 18080
HTTPS_URL = f"https://{DOMAIN}:{HTTPS_PORT}"
STUDENT = ("tls-student", "correct-horse-battery-tls")


def https_settings(stack, mode: str) -> dict[str, str]:
    return {**stack.settings, "HTTPS_MODE": mode, "HTTPS_DOMAIN": DOMAIN,
            "HTTPS_PORT": str(HTTPS_PORT), "HTTP_PORT": str(HTTP_PORT)}


def up_wait(stack, settings: dict[str, str]):
    stack.write_env(settings)
    return stack.compose("up", "-d", "--wait", check=False, timeout=600)


@pytest.fixture(scope="module")
def https_stack(stack, figures):
    plain_files = list(stack.compose_files)
    standins = "tests/standins/compose.standins.yml" in plain_files
    stack.compose_files = plain_files + HTTPS_FILES + (STANDIN_FILES if standins else [])
    started = time.monotonic()
    stack.compose("build", "caddy", timeout=900)
    figures["HTTPS: Caddy's image built"] = f"{time.monotonic() - started:.1f} s"
    yield stack
    # Back to the plain stack: Caddy goes, the hub publishes its port again.
    (stack.workdir / "https" / "certs" / "hub.crt").unlink(missing_ok=True)
    (stack.workdir / "https" / "certs" / "hub.key").unlink(missing_ok=True)
    stack.compose("rm", "-f", "-s", "caddy", check=False)
    stack.compose_files = plain_files
    stack.write_env(stack.settings)
    stack.compose("up", "-d", "--remove-orphans", timeout=600)
    stack.wait_healthy()
    run(["docker", "volume", "rm", "-f", f"{stack.project}_caddy-data", f"{stack.project}_caddy-config"], check=False)


# -- a CA and a server certificate, as a campus IT department would issue ---------------

def make_ca_and_certificate(directory):
    """Write ca.crt, hub.crt (for localhost) and hub.key; return the CA's path."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aihub test campus CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DOMAIN)]))
                   .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(DOMAIN),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "hub.crt").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "hub.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return directory / "ca.crt"


# -- what every mode must show ----------------------------------------------------------

def assert_plain_http_redirects() -> str:
    url = f"http://{DOMAIN}:{HTTP_PORT}/hub/login?next=%2Fhub%2F"
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code in (301, 308), (response.status_code, response.text[:200])
    assert response.headers["Location"] == f"{HTTPS_URL}/hub/login?next=%2Fhub%2F"
    return f"{url} -> {response.status_code} {response.headers['Location']}"


def verified_certificate(ca_file) -> str:
    """The hub's certificate as a client trusting `ca_file` alone sees it (verification and
    host name checked): TLS version, names and issuer."""
    context = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection(("127.0.0.1", HTTPS_PORT), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=DOMAIN) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            certificate = tls.getpeercert()
            names = ", ".join(f"{kind}:{value}" for kind, value in certificate["subjectAltName"])
            issuer = dict(rdn[0] for rdn in certificate["issuer"]).get("commonName", "")
            return f"{tls.version()}, for {names}, issuer CN={issuer!r}, verified"


def assert_hub_port_not_published(stack):
    assert stack.compose("port", "hub", "8000", check=False).stdout.strip() in ("", ":0")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", stack.port), timeout=3).close()


def assert_cookies_secure(browser: Browser, names: set[str]) -> str:
    cookies = {cookie.name: cookie for cookie in browser.session.cookies}
    assert names <= set(cookies), sorted(cookies)
    insecure = sorted(name for name, cookie in cookies.items() if not cookie.secure)
    assert not insecure, f"cookies without Secure over HTTPS: {insecure}"
    return ", ".join(f"{name} (Secure)" for name in sorted(cookies))


def student_session(ca_file) -> Browser:
    student = Browser(HTTPS_URL, ca_file=str(ca_file))
    student.log_in(*STUDENT)
    assert student.is_logged_in()
    return student


def assert_notebook_and_ai_work(student: Browser, figures, label: str):
    if not student.server_running():
        student.start_server()
    student.wait_until_ready()
    student.open_lab()
    figures[f"HTTPS ({label}): the student's cookies"] = assert_cookies_secure(
        student, {"jupyterhub-session-id", "jupyterhub-hub-login", f"jupyterhub-user-{STUDENT[0]}"})
    assert student.run_cell("print(6 * 7)").strip() == "42"
    figures[f"HTTPS ({label}): a cell over the kernel websocket (wss://, verified)"] = "print(6 * 7) -> 42"
    started = time.monotonic()
    answer = student.run_cell(ASK_OLLAMA, timeout=180)
    figures[f"HTTPS ({label}): %%ai cell to answer"] = f"{time.monotonic() - started:.1f} s"
    assert answer.strip() and "Traceback" not in answer
    reply = student.chat("Explain a Python list comprehension in one sentence.")
    assert reply.strip() and "error" not in reply.lower()[:200], reply[:300]


# -- the tests, in order ----------------------------------------------------------------

def test_files_mode_without_its_certificate_stops_the_start_naming_it(https_stack):
    result = up_wait(https_stack, https_settings(https_stack, "files"))
    assert result.returncode != 0
    assert 'service "secrets" didn\'t complete successfully' in result.stdout + result.stderr
    errors = [line for line in https_stack.compose("logs", "--no-log-prefix", "secrets").stdout.splitlines()
              if line.startswith("aihub: configuration error:")]
    assert errors == [
        "aihub: configuration error: HTTPS_CERT_FILE='hub.crt': no such file in https/certs/; copy your certificate"
        " there or name it in HTTPS_CERT_FILE; set it in .env",
        "aihub: configuration error: HTTPS_KEY_FILE='hub.key': no such file in https/certs/; copy your private key"
        " there or name it in HTTPS_KEY_FILE; set it in .env",
    ]
    assert https_stack.health() != "healthy"


@pytest.fixture(scope="module")
def campus_ca(https_stack, tmp_path_factory):
    directory = tmp_path_factory.mktemp("campus-ca")
    ca_file = make_ca_and_certificate(directory)
    certs = https_stack.workdir / "https" / "certs"
    for name in ("hub.crt", "hub.key"):
        (certs / name).write_bytes((directory / name).read_bytes())
    return ca_file


def test_files_mode_serves_the_hub_with_the_admins_certificate(https_stack, campus_ca, figures):
    started = time.monotonic()
    result = up_wait(https_stack, https_settings(https_stack, "files"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    figures["HTTPS (files): up -d --wait from the plain stack"] = f"{time.monotonic() - started:.1f} s"
    figures["HTTPS (files): plain HTTP"] = assert_plain_http_redirects()
    assert_hub_port_not_published(https_stack)
    # Without the campus CA, the certificate is refused: verification is really on.
    with pytest.raises(requests.exceptions.SSLError) as refused:
        requests.get(HTTPS_URL + "/hub/login", timeout=10)
    [why] = re.findall(r"certificate verify failed[^(']*", str(refused.value))[:1]
    figures["HTTPS (files): without the campus CA"] = f"refused: {why.strip()}"
    figures["HTTPS (files): with the campus CA"] = verified_certificate(campus_ca)

    admin = Browser(HTTPS_URL, ca_file=str(campus_ca))
    admin.log_in(*https_stack.admin_login())
    assert admin.is_logged_in()
    assert_cookies_secure(admin, {"jupyterhub-session-id", "jupyterhub-hub-login", "_xsrf"})

    student = Browser(HTTPS_URL, ca_file=str(campus_ca))
    assert "sent to the admin" in student.sign_up(*STUDENT)
    admin.approve(STUDENT[0])
    assert_notebook_and_ai_work(student_session(campus_ca), figures, "files")


def test_internal_mode_serves_the_hub_with_caddys_own_ca(https_stack, campus_ca, tmp_path, figures):
    started = time.monotonic()
    result = up_wait(https_stack, https_settings(https_stack, "internal"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    figures["HTTPS (internal): up -d --wait from files mode"] = f"{time.monotonic() - started:.1f} s"
    # The README's command: the root students' browsers trust.
    root = tmp_path / "aihub-root.crt"
    https_stack.compose("cp", f"caddy:{INTERNAL_ROOT}", str(root))
    assert root.read_text().startswith("-----BEGIN CERTIFICATE-----")
    # Caddy's root, not the campus CA, now vouches for the hub.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(HTTPS_URL + "/hub/login", verify=str(campus_ca), timeout=10)
    figures["HTTPS (internal): with Caddy's root"] = verified_certificate(root)
    figures["HTTPS (internal): plain HTTP"] = assert_plain_http_redirects()
    assert_hub_port_not_published(https_stack)
    assert_notebook_and_ai_work(student_session(root), figures, "internal")


def test_the_rehearsal_runs_behind_https(https_stack):
    """The admin's class tools talk to the hub inside its container: its public https://
    address must not get in their way."""
    result = https_stack.compose("exec", "-T", "hub", "python", "-m", "aihub.rehearse", "--students", "2", timeout=600)
    assert "(2 of 2 ready)" in result.stdout and "(2 of 2 answered)" in result.stdout, result.stdout
    assert "FAILED" not in result.stdout


def test_acme_mode_passes_caddys_configuration_check(https_stack):
    """Let's Encrypt needs a public domain: here, Caddy validates the configuration only."""
    result = https_stack.compose("run", "--rm", "--no-deps", "-e", "HTTPS_MODE=acme", "-e", "HTTPS_DOMAIN=hub.example.edu",
                                 "-e", "HTTPS_EMAIL=it@example.edu", "caddy", "validate", check=False, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Valid configuration" in result.stdout + result.stderr
