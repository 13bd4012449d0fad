"""SSO consume latency vs bare python3-saml validation, for rsa-sha1/1024 and rsa-sha256/2048.

    python benchmarks/sso_consume.py [--iterations 300] [--db postgresql] [--no-cache]
        [--prepare-threshold N|off] [--synchronous-commit | --no-synchronous-commit]
        [--test-client]

In one process, on fresh databases (SQLite files in a temporary directory by
default), with two presets (one per key):

* consume: what the app does for one login through the Django stack, the project's
  WSGI application called in this process as a WSGI server calls it (``--test-client``:
  through Django's test client, which adds its own work to each request): the ACS POST
  (strict validation with our binding checks, replay cache insert, login ticket) plus
  the completion GET it redirects to
  (ticket, company/user/membership refresh, ``login()``). Every iteration posts
  a freshly signed Response (the replay cache refuses reuse); signing is not timed.
* bare: ``OneLogin_Saml2_Response(...).is_valid(...)`` on the same Responses with
  the same python3-saml settings, nothing else: python3-saml as shipped, which
  parses and compiles its protocol schema and every XPath on every call (the ratios of
  the JSON are against this), and with the app's XML helpers, which keep them compiled
  (``maestrano_integration.saml``), shown beside it. Each login is followed by
  the bare validations of its Response, so all three see the same load.

The production configuration (docs/deploy.md): ``DEBUG`` off, database
connections kept between requests (``DATABASE_CONN_MAX_AGE=600``, as under the
gunicorn recipe), the sandbox not mounted, and the shared cache of the recipe
(``--cache-url``, Redis by default) holding the sessions, the SSO replay cache and
the login tickets; ``--no-cache`` keeps them in the database (the default settings),
``--debug`` runs with ``DEBUG`` on, as the figures before round 2 were taken.
On PostgreSQL the recipe prepares the statements a connection repeats
(``DATABASE_PREPARE_THRESHOLD=5``); ``--prepare-threshold N`` changes the number and
``--prepare-threshold off`` measures without them (the environment's value, when set, is
the default); the title and the JSON's ``prepare_threshold`` say whether they are on;
the recipe also lets a repeat login's commit return before PostgreSQL's disk flush
(``MAESTRANO_SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT=false``: the example project's logins
write only login times); ``--synchronous-commit`` measures the durable commit (the apps'
default) instead, ``--no-synchronous-commit`` the recipe's whatever the environment says
(the environment's value, when set, is the default; JSON
``repeat_login_synchronous_commit``).
The form body is urlencoded before the clock starts (the browser's work).
``--profile`` prints cProfile of the logins instead of the JSON, timed by this process's
CPU (waits for the database, Redis or the scheduler are not in it).

Prints a table (with the configuration and the load average); the last line is
one JSON object with ``consume_p50_ms_sha1``, ``consume_p50_ms_sha256``,
``consume_p99_ms_sha256``, ``overhead_sha1`` and ``overhead_sha256`` (consume p50 /
bare p50), ``overhead_vs_bare_validation`` (the larger of the two),
``overhead_vs_bare_kept_schema`` (the same against the kept-schema bare) and
``ratio_cpu_sha1`` and ``ratio_cpu_sha256`` (mean CPU time of this process per login /
per bare ``is_valid``: steadier than wall times on a shared machine, but the database
server's and Redis's work is not in it), ``queries_per_repeat_login`` (the statements
of one more repeat login: same browser, known user and company), plus the
configuration and the bare and ACS p50s.
Absolute times vary between machines; compare ratios within a run.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import statistics
import time
from typing import Any

import harness

APP_HOST = "http://testserver"
# A closed local port: nothing in this benchmark may leave the machine.
PLATFORM_HOST = "http://127.0.0.1:9/sandbox"
GROUP_UID = "cld-bench"
USER_UID = "usr-bench"
#: In the middleware only when the sandbox is mounted (config/settings.py).
SANDBOX_MIDDLEWARE = "maestrano_sandbox.faults.FaultInjectionMiddleware"


def make_key_pair(bits: int) -> tuple[str, str]:
    """(private key PEM, certificate PEM) from the sandbox's own generator."""
    from maestrano_sandbox.keys import generate_key_pair

    pair = generate_key_pair(bits=bits, common_name=f"bench-idp-{bits}")
    return pair.private_key_pem, pair.certificate_pem


ATTRIBUTES = {
    "mno_uid": USER_UID,
    "mno_session": "bench-session",
    "mno_session_recheck": "2099-01-01T00:00:00Z",
    "group_uid": GROUP_UID,
    "group_name": "Bench Pty",
    "group_end_free_trial": "2099-01-01T00:00:00Z",
    "group_role": "Admin",
    "group_has_credit_card": "true",
    "group_email": "bench@example.com",
    "group_currency": "AUD",
    "group_timezone": "Australia/Sydney",
    "group_country": "AU",
    "group_city": "Sydney",
    "uid": USER_UID,
    "virtual_uid": f"{USER_UID}.{GROUP_UID}",
    "email": "bench@example.com",
    "virtual_email": f"{USER_UID}.{GROUP_UID}@mail.maestrano.com",
    "name": "Bench",
    "surname": "Mark",
    "country": "AU",
}


def signed_response(preset, *, private_pem: str, certificate_pem: str, algorithm: str) -> str:
    """A Response like the sandbox's (Assertion and Response signed), base64-encoded."""
    from onelogin.saml2.constants import OneLogin_Saml2_Constants as Saml
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    sign_algorithm, digest = {
        "sha1": (Saml.RSA_SHA1, Saml.SHA1),
        "sha256": (Saml.RSA_SHA256, Saml.SHA256),
    }[algorithm]
    now = dt.datetime.now(dt.UTC)

    def stamp(moment: dt.datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    attributes = "".join(
        f'<saml:Attribute Name="{name}"><saml:AttributeValue>{value}</saml:AttributeValue>'
        "</saml:Attribute>"
        for name, value in ATTRIBUTES.items()
    )
    expiry = stamp(now + dt.timedelta(minutes=5))
    assertion = (
        f'<saml:Assertion xmlns:saml="{Saml.NS_SAML}" ID="_{secrets.token_hex(16)}" '
        f'Version="2.0" IssueInstant="{stamp(now)}">'
        f"<saml:Issuer>{preset.idp}</saml:Issuer>"
        f'<saml:Subject><saml:NameID Format="{preset.name_id_format}">{USER_UID}</saml:NameID>'
        f'<saml:SubjectConfirmation Method="{Saml.CM_BEARER}">'
        f'<saml:SubjectConfirmationData NotOnOrAfter="{expiry}" Recipient="{preset.acs_url}"/>'
        "</saml:SubjectConfirmation></saml:Subject>"
        f'<saml:Conditions NotBefore="{stamp(now - dt.timedelta(minutes=1))}" '
        f'NotOnOrAfter="{expiry}"><saml:AudienceRestriction>'
        f"<saml:Audience>{preset.api_id}</saml:Audience></saml:AudienceRestriction>"
        "</saml:Conditions>"
        f'<saml:AuthnStatement AuthnInstant="{stamp(now)}" SessionIndex="_s">'
        "<saml:AuthnContext><saml:AuthnContextClassRef>"
        "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
        "</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"
        f"<saml:AttributeStatement>{attributes}</saml:AttributeStatement>"
        "</saml:Assertion>"
    )
    signed_assertion = OneLogin_Saml2_Utils.add_sign(
        assertion,
        private_pem,
        certificate_pem,
        sign_algorithm=sign_algorithm,
        digest_algorithm=digest,
    )
    signed_assertion = (
        signed_assertion.decode() if isinstance(signed_assertion, bytes) else signed_assertion
    )
    response = (
        f'<samlp:Response xmlns:samlp="{Saml.NS_SAMLP}" xmlns:saml="{Saml.NS_SAML}" '
        f'ID="_{secrets.token_hex(16)}" Version="2.0" IssueInstant="{stamp(now)}" '
        f'Destination="{preset.acs_url}"><saml:Issuer>{preset.idp}</saml:Issuer>'
        f'<samlp:Status><samlp:StatusCode Value="{Saml.STATUS_SUCCESS}"/></samlp:Status>'
        f"{signed_assertion.split('?>', 1)[-1]}</samlp:Response>"
    )
    signed = OneLogin_Saml2_Utils.add_sign(
        response,
        private_pem,
        certificate_pem,
        sign_algorithm=sign_algorithm,
        digest_algorithm=digest,
    )
    return base64.b64encode(signed if isinstance(signed, bytes) else signed.encode()).decode()


def form_body(encoded: str) -> str:
    """The body the IdP's auto-submit form posts: urlencoded (the browser's work, so
    made before the clock starts)."""
    from urllib.parse import urlencode

    return urlencode({"SAMLResponse": encoded})


def post_form(client, path: str, body: str):
    """POST a :func:`form_body` as the browser does: urlencoded, not multipart (the test
    client's default, whose parser costs more than the browser's form)."""
    return client.post(path, body, content_type="application/x-www-form-urlencoded")


class WsgiBrowser:
    """A browser driving the project's WSGI application in this process, as a WSGI
    server (gunicorn) calls it: ``application(environ, start_response)``, the response
    iterated and closed (Django's ``request_started`` and ``request_finished`` signals,
    hence the database connection's age and health checks, run as in production).
    Cookies are kept per name, as a browser keeps them for one host.

    Django's test client adds its own work to every request (template and exception
    signals connected and disconnected, the request and response copied for the test,
    ``close_old_connections`` disconnected); ``--test-client`` measures through it.
    """

    def __init__(self, application: Any, *, host: str = "testserver") -> None:
        self.application = application
        self.host = host
        self.cookies: dict[str, str] = {}

    def post(self, path: str, body: str, content_type: str):
        data = body.encode()
        return self._request(
            "POST",
            path,
            data,
            {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(data))},
        )

    def get(self, url: str):
        return self._request("GET", url, b"", {})

    def _request(self, method: str, url: str, data: bytes, extra: dict[str, str]):
        import io
        from urllib.parse import urlsplit
        from wsgiref.util import setup_testing_defaults

        parts = urlsplit(url)
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": parts.path,
            "QUERY_STRING": parts.query,
            "SERVER_NAME": self.host,
            "HTTP_HOST": self.host,
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(data),
            **extra,
        }
        setup_testing_defaults(environ)  # the other keys a WSGI server gives
        if self.cookies:
            environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.application(environ, lambda status, headers, exc_info=None: None)
        try:
            b"".join(response)
        finally:
            response.close()
        for name, morsel in response.cookies.items():
            if morsel["max-age"] == 0 or morsel.value == "":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.coded_value
        return response


def bare_validation(encoded: str, *, settings: Any, request_data: dict, shipped: bool) -> float:
    """Milliseconds of python3-saml's own ``is_valid`` of ``encoded``: with its XML
    helpers as shipped (``shipped``: the XPath and the protocol schema compiled on every
    call), or with the app's, which keep them compiled
    (``maestrano_integration.saml.SHIPPED_XML_HELPERS``)."""
    from onelogin.saml2.response import OneLogin_Saml2_Response
    from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

    from maestrano_integration.saml import SHIPPED_XML_HELPERS

    kept = {name: getattr(OneLogin_Saml2_XML, name) for name in SHIPPED_XML_HELPERS}
    if shipped:
        for name, helper in SHIPPED_XML_HELPERS.items():
            setattr(OneLogin_Saml2_XML, name, staticmethod(helper))
    try:
        started = time.perf_counter()
        response = OneLogin_Saml2_Response(settings, encoded)
        valid = response.is_valid(request_data)
        elapsed = (time.perf_counter() - started) * 1000
    finally:
        for name, helper in kept.items():
            setattr(OneLogin_Saml2_XML, name, staticmethod(helper))
    assert valid, response.get_error()
    return elapsed


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as source:
            return "load average " + " ".join(source.read().split()[:3])
    except OSError:
        return "load average unknown"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def run(iterations: int, *, profiler: Any = None, test_client: bool = False) -> dict[str, object]:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from maestrano_integration.conf import get_preset, maestrano_settings
    from maestrano_integration.saml import saml_settings

    if test_client:
        setup_test_environment()

    def browser() -> Any:
        if test_client:
            return Client()
        from django.core.wsgi import get_wsgi_application

        return WsgiBrowser(get_wsgi_application())

    keys = {"sha1": make_key_pair(1024), "sha256": make_key_pair(2048)}
    preset_names = {"sha256": "maestrano", "sha1": "legacy"}

    def preset_values(algorithm: str) -> dict:
        # SHA-1 is accepted by default (sso.allow_sha1), as the historical platform signs.
        sso = {"x509_certificate": keys[algorithm][1]}
        return {
            "app": {"host": APP_HOST},
            "api": {"id": "bench-app", "key": "bench-key", "host": PLATFORM_HOST},
            "sso": sso,
        }

    settings.MAESTRANO = {
        "DEFAULT_PRESET": "maestrano",
        "PRESETS": {preset_names[alg]: preset_values(alg) for alg in keys},
        "SYNC": {"IMPORT_ON_COMPANY_CREATED": False},
        # The recipe's (or the default's) home of the replay cache and login tickets.
        "SSO_STATE_CACHE": settings.MAESTRANO.get("SSO_STATE_CACHE"),
        "SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT": settings.MAESTRANO.get(
            "SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT", True
        ),
    }
    maestrano_settings.reload()

    results: dict[str, dict[str, list[float]]] = {}
    queries: dict[str, int] = {}
    for algorithm in ("sha1", "sha256"):
        preset = get_preset(preset_names[algorithm])
        private_pem, certificate_pem = keys[algorithm]
        responses = [
            signed_response(
                preset,
                private_pem=private_pem,
                certificate_pem=certificate_pem,
                algorithm=algorithm,
            )
            for _ in range(iterations + 5)
        ]
        consume_path = preset.consume_path
        client = browser()
        python3_saml_settings = saml_settings(preset)
        request_data = {
            "https": "off",
            "http_host": "testserver",
            "script_name": consume_path,
            "get_data": {},
            "post_data": {},
        }
        # Bare python3-saml as shipped (its protocol schema compiled on every call), and
        # with the app's XML helpers, which keep it compiled (maestrano_integration.saml).
        samples: dict[str, list[float]] = {
            "acs_post": [],
            "consume": [],
            "bare": [],
            "bare_kept_schema": [],
            # This process's CPU (time.process_time), not the database server's.
            "consume_cpu": [],
            "bare_cpu": [],
        }
        # Each login is followed by the bare validations of its Response, so that the
        # three measures see the same load on a shared machine.
        for index, encoded in enumerate(responses):
            body = form_body(encoded)
            profiling = profiler is not None and index >= 5
            if profiling:
                profiler.enable()
            started, cpu_started = time.perf_counter(), time.process_time()
            answer = post_form(client, consume_path, body)
            posted = time.perf_counter()
            assert answer.status_code == 303, (answer.status_code, answer.content[:300])
            done = client.get(answer["Location"])
            finished, cpu_finished = time.perf_counter(), time.process_time()
            if profiling:
                profiler.disable()
            assert done.status_code == 302, (done.status_code, done.content[:300])
            bare_cpu_started = time.process_time()
            bare_shipped = bare_validation(
                encoded,
                settings=python3_saml_settings,
                request_data=request_data,
                shipped=True,
            )
            bare_cpu = time.process_time() - bare_cpu_started
            bare_kept = bare_validation(
                encoded,
                settings=python3_saml_settings,
                request_data=request_data,
                shipped=False,
            )
            if index >= 5:  # warm-up: first company/user creation, caches
                samples["acs_post"].append((posted - started) * 1000)
                samples["consume"].append((finished - started) * 1000)
                samples["bare"].append(bare_shipped)
                samples["bare_kept_schema"].append(bare_kept)
                samples["consume_cpu"].append((cpu_finished - cpu_started) * 1000)
                samples["bare_cpu"].append(bare_cpu * 1000)
        # Queries of one more repeat login (existing user and company), not timed.
        extra = signed_response(
            preset, private_pem=private_pem, certificate_pem=certificate_pem, algorithm=algorithm
        )
        with CaptureQueriesContext(connection) as captured:
            answer = post_form(client, consume_path, form_body(extra))
            client.get(answer["Location"])
        queries[algorithm] = len(captured.captured_queries)
        results[algorithm] = samples

    database = settings.DATABASES["default"]
    state_cache = maestrano_settings.SSO_STATE_CACHE
    sso_state = (
        f"cache ({settings.CACHES[state_cache]['BACKEND'].rsplit('.', 1)[-1]})"
        if state_cache
        else "database"
    )
    prepare_threshold = database.get("OPTIONS", {}).get("prepare_threshold")
    synchronous_commit = maestrano_settings.SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT
    prepared = "off" if prepare_threshold is None else f"after {prepare_threshold} uses"
    driver = "Django's test client" if test_client else "the WSGI application"
    configuration = (
        f"through {driver}, {database['ENGINE'].rsplit('.', 1)[-1]}, "
        f"DEBUG {'on' if settings.DEBUG else 'off'}, "
        f"CONN_MAX_AGE {database['CONN_MAX_AGE']}, prepared statements {prepared}, "
        f"sandbox {'mounted' if SANDBOX_MIDDLEWARE in settings.MIDDLEWARE else 'not mounted'}, "
        f"SSO state in {sso_state}, sessions {settings.SESSION_ENGINE}, repeat logins' "
        f"commit {'synchronous' if synchronous_commit else 'without waiting for the flush'}"
    )
    print(f"SSO consume, {iterations} logins per algorithm (ms); {configuration}; {loadavg()}")
    print(f"{'algorithm':<16}{'measure':<34}{'p50':>9}{'p99':>9}")
    labels = {
        "bare": "bare python3-saml is_valid",
        "bare_kept_schema": "bare is_valid, schema kept",
        "acs_post": "ACS POST (validate, replay, ticket)",
        "consume": "consume (ACS POST + completion)",
    }
    for algorithm, label in (("sha1", "rsa-sha1/1024"), ("sha256", "rsa-sha256/2048")):
        for measure in ("bare", "bare_kept_schema", "acs_post", "consume"):
            samples = results[algorithm][measure]
            print(
                f"{label:<16}{labels[measure]:<34}"
                f"{percentile(samples, 0.5):>9.2f}{percentile(samples, 0.99):>9.2f}"
            )
        ratio = percentile(results[algorithm]["consume"], 0.5) / percentile(
            results[algorithm]["bare"], 0.5
        )
        print(f"{label:<16}{'consume p50 / bare p50':<34}{ratio:>9.2f}")
        kept_ratio = percentile(results[algorithm]["consume"], 0.5) / percentile(
            results[algorithm]["bare_kept_schema"], 0.5
        )
        print(f"{label:<16}{'consume p50 / bare kept-schema p50':<34}{kept_ratio:>9.2f}")
        cpu_ratio = statistics.mean(results[algorithm]["consume_cpu"]) / statistics.mean(
            results[algorithm]["bare_cpu"]
        )
        print(f"{label:<16}{'CPU mean: consume / bare':<34}{cpu_ratio:>9.2f}")
        print(f"{label:<16}{'queries of a repeat login':<34}{queries[algorithm]:>9}")

    overhead = {
        algorithm: round(
            percentile(results[algorithm]["consume"], 0.5)
            / percentile(results[algorithm]["bare"], 0.5),
            3,
        )
        for algorithm in ("sha1", "sha256")
    }
    overhead_kept = {
        algorithm: round(
            percentile(results[algorithm]["consume"], 0.5)
            / percentile(results[algorithm]["bare_kept_schema"], 0.5),
            3,
        )
        for algorithm in ("sha1", "sha256")
    }
    overhead_cpu = {
        algorithm: round(
            statistics.mean(results[algorithm]["consume_cpu"])
            / statistics.mean(results[algorithm]["bare_cpu"]),
            3,
        )
        for algorithm in ("sha1", "sha256")
    }
    return {
        "driver": "test_client" if test_client else "wsgi",
        "debug": bool(settings.DEBUG),
        "conn_max_age": database["CONN_MAX_AGE"],
        "prepare_threshold": prepare_threshold,
        "repeat_login_synchronous_commit": synchronous_commit,
        "sso_state": sso_state,
        "session_engine": settings.SESSION_ENGINE,
        "acs_post_p50_ms_sha256": round(percentile(results["sha256"]["acs_post"], 0.5), 3),
        "bare_p50_ms_sha1": round(percentile(results["sha1"]["bare"], 0.5), 3),
        "bare_p50_ms_sha256": round(percentile(results["sha256"]["bare"], 0.5), 3),
        "bare_kept_schema_p50_ms_sha256": round(
            percentile(results["sha256"]["bare_kept_schema"], 0.5), 3
        ),
        "consume_p50_ms_sha1": round(percentile(results["sha1"]["consume"], 0.5), 3),
        "consume_p50_ms_sha256": round(percentile(results["sha256"]["consume"], 0.5), 3),
        "consume_p99_ms_sha256": round(percentile(results["sha256"]["consume"], 0.99), 3),
        "overhead_sha1": overhead["sha1"],
        "overhead_sha256": overhead["sha256"],
        "overhead_vs_bare_validation": max(overhead.values()),
        "overhead_vs_bare_kept_schema": max(overhead_kept.values()),
        "ratio_cpu_sha1": overhead_cpu["sha1"],
        "ratio_cpu_sha256": overhead_cpu["sha256"],
        "queries_per_repeat_login": max(queries.values()),
    }


#: The recipe's shared cache (docs/deploy.md, "Sessions and SSO state in a shared cache").
RECIPE_CACHE_URL = "redis://127.0.0.1:6379/0"
#: The recipe's repeat-login commit (docs/deploy.md, "The production environment"): it
#: does not wait for PostgreSQL's disk flush (SQLite, or the SSO state in the database,
#: keep the durable commit whatever it says).
RECIPE_SYNCHRONOUS_COMMIT = "false"


def recipe_cache_environment(cache_url: str) -> dict[str, str]:
    """The environment of docs/deploy.md's shared cache: sessions, replay cache and
    login tickets in it (the keys are random: runs sharing a Redis database do not meet)."""
    return {
        "CACHE_URL": cache_url,
        "SESSION_ENGINE": "maestrano_accounts.cache_session_store",
        "MAESTRANO_SSO_STATE_CACHE": "default",
    }


def main() -> None:
    parser = harness.parser(__doc__, records=None, repeat=None)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument(
        "--debug",
        action="store_true",
        help="run with DEBUG on, as this benchmark did before (production runs it off)",
    )
    parser.add_argument(
        "--cache-url",
        default=RECIPE_CACHE_URL,
        help="the shared cache of the production recipe (docs/deploy.md), holding the "
        f"sessions and the SSO replay cache and tickets (default {RECIPE_CACHE_URL})",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="the default settings instead: sessions and SSO state in the database",
    )
    parser.add_argument(
        "--prepare-threshold",
        default=os.environ.get("DATABASE_PREPARE_THRESHOLD") or harness.RECIPE_PREPARE_THRESHOLD,
        help="PostgreSQL: prepared statements after N uses (DATABASE_PREPARE_THRESHOLD, "
        "docs/deploy.md), or 'off'; default: as in the environment, else the recipe's "
        f"{harness.RECIPE_PREPARE_THRESHOLD}",
    )
    commit = parser.add_mutually_exclusive_group()
    commit.add_argument(
        "--synchronous-commit",
        dest="synchronous_commit",
        action="store_const",
        const="true",
        help="PostgreSQL: a repeat login's commit waits for the disk flush (the apps' "
        "default) instead of the recipe's relaxed commit",
    )
    commit.add_argument(
        "--no-synchronous-commit",
        dest="synchronous_commit",
        action="store_const",
        const="false",
        help="PostgreSQL: a repeat login's commit does not wait for the disk flush "
        "(MAESTRANO_SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT=false, docs/deploy.md); the "
        "default unless the environment sets that variable",
    )
    parser.add_argument(
        "--test-client",
        action="store_true",
        help="send the requests through Django's test client (as this benchmark did up to "
        "the twenty-second session of round 2) instead of the WSGI application",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the logins (ACS POST + completion) to stderr; no JSON line",
    )
    arguments = parser.parse_args()
    harness.setup(
        db=arguments.db,
        pg_name="bench_sso_consume",
        prefix="bench-sso-",
        # The production configuration (docs/deploy.md): DEBUG off, persistent database
        # connections rather than a new one for each of a login's two requests.
        # ``--debug`` measures with DEBUG on, as the figures before round 2 were.
        extra_env={
            "DEBUG": "true" if arguments.debug else "false",
            "DATABASE_CONN_MAX_AGE": "600",
            # No sandbox mounted (its URLs and fault middleware), as in production: this
            # benchmark signs its own Responses and calls no platform.
            "SANDBOX_ENABLED": "false",
            "SANDBOX_FORCE": "false",
            **({} if arguments.no_cache else recipe_cache_environment(arguments.cache_url)),
            "MAESTRANO_SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT": (
                arguments.synchronous_commit
                or os.environ.get("MAESTRANO_SSO_REPEAT_LOGIN_SYNCHRONOUS_COMMIT")
                or RECIPE_SYNCHRONOUS_COMMIT
            ),
            "DATABASE_PREPARE_THRESHOLD": (
                "" if arguments.prepare_threshold == "off" else arguments.prepare_threshold
            ),
        },
    )
    if not arguments.profile:
        harness.emit(run(arguments.iterations, test_client=arguments.test_client))
        return
    import cProfile
    import pstats
    import sys

    profiler = cProfile.Profile(time.process_time)
    run(arguments.iterations, profiler=profiler, test_client=arguments.test_client)
    for order in ("cumulative", "tottime"):
        pstats.Stats(profiler, stream=sys.stderr).sort_stats(order).print_stats(45)


if __name__ == "__main__":
    main()
