"""Four FHIR client libraries of other projects, used unchanged against a live server with
authentication on and the built-in authorization server.

fhirpy and fhirclient (Python) run here; @medplum/core's MedplumClient and fhir-kit-client
(Node, ``tests/clients``, installed by ``npm ci``) run as scripts that print their results as
JSON. Each library gets its token its own way with its default settings:

* fhirpy has no token flow of its own: authlib's OAuth 2 client with a ``private_key_jwt``
  assertion (SMART Backend Services), asking for the two types the steps use;
* fhirclient: its own backend-services flow (``jwt_token``);
* MedplumClient: ``startClientLogin`` (``client_secret_post``), asking for no scope;
* fhir-kit-client: the token URL from its ``smartAuthMetadata``, then simple-oauth2's client
  credentials (``client_secret_basic``), as the library's documentation pairs them.

Then the same steps (``_steps`` here, ``tests/clients/scenario.mjs`` there): create, read,
update and delete, a search followed page by page through ``next``, a transaction whose
second entry references the first by its ``urn:uuid``, and a batch holding a search and a
read. The results are asserted alike for all four.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
import requests
from fhirclient.client import FHIRClient
from fhirclient.models.fhirelementfactory import FHIRElementFactory
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound
from joserfc import jwt

from tests.authkit import rsa_key
from tests.servers import environment, keyworker_ok, serving

pytestmark = pytest.mark.e2e

CLIENTS_DIR = Path(__file__).parent / "clients"
REGISTERED = "system/*.cruds"
ASKED = "system/Patient.cruds system/RelatedPerson.cruds"
PATIENTS = 5
PAGE_SIZE = 2
TX_PATIENT = "urn:uuid:0b7b6e38-5d6b-4a39-9a0e-1f1d8c1a2b3c"

Resource = dict[str, Any]


@dataclass(frozen=True)
class Live:
    root: str
    env: dict[str, str]

    @property
    def base(self) -> str:
        return f"{self.root}/fhir"

    @property
    def token_url(self) -> str:
        return f"{self.root}/auth/token"

    def register(self, *how: str, scopes: str = REGISTERED) -> dict[str, Any]:
        """A client registered with the console script."""
        name = f"library-{uuid.uuid4().hex[:8]}"
        registered = keyworker_ok(
            self.env, "clients", "add", "--name", name, "--scopes", scopes, *how, "--json"
        )
        return dict(json.loads(registered))


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp("client-libraries")
    env = environment(f"sqlite:///{workdir / 'keyworker.sqlite3'}")
    keyworker_ok(env, "db", "upgrade")
    with serving(env, workdir) as (root, _):
        yield Live(root, env)


class Library(Protocol):
    """One client library's calls for each step."""

    scope: str

    def create(self, resource: Resource) -> Resource: ...
    def read(self, resource_type: str, resource_id: str) -> Resource: ...
    def update(self, resource: Resource) -> Resource: ...
    def remove(self, resource_type: str, resource_id: str) -> None: ...
    def search(
        self, resource_type: str, params: dict[str, str]
    ) -> tuple[list[Resource], list[Resource]]:
        """(the first page, every match found by following ``next``)"""

    def bundle(self, bundle: Resource) -> Resource: ...
    def read_status(self, resource_type: str, resource_id: str) -> int | str: ...


def _patient(family: str, given: str) -> Resource:
    return {"resourceType": "Patient", "name": [{"family": family, "given": [given]}]}


def _id_in(location: str, resource_type: str) -> str:
    """``RelatedPerson/abc/_history/1`` (relative or absolute) -> ``abc``."""
    parts = location.split("/")
    return parts[len(parts) - 1 - parts[::-1].index(resource_type) + 1]


def _steps(library: Library, family: str) -> dict[str, Any]:
    """The steps of ``tests/clients/scenario.mjs``, with the same results."""
    created = [library.create(_patient(family, f"Given{n}")) for n in range(PATIENTS)]
    first = created[0]
    read = library.read("Patient", first["id"])
    updated = library.update({**read, "name": [{"family": family, "given": ["Ada", "Grace"]}]})
    first_page, found = library.search("Patient", {"family": family, "_count": str(PAGE_SIZE)})
    transaction = library.bundle(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": TX_PATIENT,
                    "resource": _patient(f"T{family}", "Tx"),
                    "request": {"method": "POST", "url": "Patient"},
                },
                {
                    "resource": {
                        "resourceType": "RelatedPerson",
                        "patient": {"reference": TX_PATIENT},
                        "name": [{"family": f"T{family}"}],
                    },
                    "request": {"method": "POST", "url": "RelatedPerson"},
                },
            ],
        }
    )
    batch = library.bundle(
        {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": f"Patient?family={family}&_count=100"}},
                {"request": {"method": "GET", "url": f"Patient/{first['id']}"}},
            ],
        }
    )
    related = library.read(
        "RelatedPerson", _id_in(transaction["entry"][1]["response"]["location"], "RelatedPerson")
    )
    library.remove("Patient", first["id"])
    searched, read_back = batch["entry"]
    return {
        "scope": library.scope,
        "created": [r["id"] for r in created],
        "read": {"id": read["id"], "family": read["name"][0]["family"]},
        "updated": {"version": updated["meta"]["versionId"], "given": updated["name"][0]["given"]},
        "first_page": len(first_page),
        "found": [r["id"] for r in found],
        "transaction": {
            "statuses": [e["response"]["status"] for e in transaction["entry"]],
            "patient": transaction["entry"][0]["response"]["location"],
            "related_patient": related["patient"]["reference"],
        },
        "batch": {
            "statuses": [e["response"]["status"] for e in batch["entry"]],
            "found": [e["resource"]["id"] for e in searched.get("resource", {}).get("entry", [])],
            "read": read_back.get("resource", {}).get("id"),
        },
        "deleted_status": library.read_status("Patient", first["id"]),
    }


def _assert_steps(results: dict[str, Any], family: str, scope: str) -> None:
    assert results["scope"] == scope
    created = results["created"]
    assert len(set(created)) == PATIENTS
    assert results["read"] == {"id": created[0], "family": family}
    assert results["updated"] == {"version": "2", "given": ["Ada", "Grace"]}
    # five matches at two a page: all found only by following ``next``
    assert results["first_page"] == PAGE_SIZE
    assert sorted(results["found"]) == sorted(created)
    transaction = results["transaction"]
    assert [s.split()[0] for s in transaction["statuses"]] == ["201", "201"]
    patient_id = _id_in(transaction["patient"], "Patient")
    assert transaction["related_patient"] == f"Patient/{patient_id}"
    batch = results["batch"]
    assert [s.split()[0] for s in batch["statuses"]] == ["200", "200"]
    assert sorted(batch["found"]) == sorted(created)
    assert batch["read"] == created[0]
    assert results["deleted_status"] in (410, "not found")


def _family() -> str:
    return f"Lib{uuid.uuid4().hex[:10]}"


def _node(script: str, live: Live, client: dict[str, Any], family: str) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None or not (CLIENTS_DIR / "node_modules").is_dir():
        raise pytest.UsageError("Node 20 and `npm ci` in tests/clients are needed: run `make test`")
    done = subprocess.run(
        [node, script],
        cwd=CLIENTS_DIR,
        env={
            **os.environ,
            "FHIR_BASE": live.base,
            "CLIENT_ID": client["client_id"],
            "CLIENT_SECRET": client["client_secret"],
            "FAMILY": family,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    results: dict[str, Any] = json.loads(done.stdout)
    return results


def _fields(resource: Resource) -> Resource:
    return {k: v for k, v in resource.items() if k != "resourceType"}


class _Fhirpy:
    """fhirpy's synchronous client: resources saved and deleted, searches iterated."""

    def __init__(self, base: str, token: dict[str, Any]) -> None:
        self.scope = str(token["scope"])
        self.client = SyncFHIRClient(base, authorization=f"Bearer {token['access_token']}")

    def create(self, resource: Resource) -> Resource:
        created = self.client.resource(resource["resourceType"], **_fields(resource)).save()
        return dict(created.serialize())

    def read(self, resource_type: str, resource_id: str) -> Resource:
        return dict(self.client.reference(resource_type, resource_id).to_resource().serialize())

    def update(self, resource: Resource) -> Resource:
        return self.create(resource)  # with an id, fhirpy's save is an update (PUT)

    def remove(self, resource_type: str, resource_id: str) -> None:
        self.client.resource(resource_type, id=resource_id).delete()

    def search(
        self, resource_type: str, params: dict[str, str]
    ) -> tuple[list[Resource], list[Resource]]:
        found = self.client.resources(resource_type).search(**params)
        return [r.serialize() for r in found.fetch()], [r.serialize() for r in found]

    def bundle(self, bundle: Resource) -> Resource:
        return dict(self.client.execute("", method="post", data=bundle))

    def read_status(self, resource_type: str, resource_id: str) -> int | str:
        try:
            self.read(resource_type, resource_id)
        except ResourceNotFound:
            return "not found"  # fhirpy answers 404 and 410 alike
        return 200


def _authlib_token(live: Live, client_id: str, key: Any) -> dict[str, Any]:
    """authlib's OAuth 2 client with a private_key_jwt assertion, SMART Backend Services'
    way (RS384; an assertion at most five minutes ahead, as SMART requires)."""
    import authlib.deprecate  # installs its own "always" filter: ours must come after it

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
        from authlib.integrations.requests_client import OAuth2Session
    from authlib.oauth2.rfc7523 import PrivateKeyJWT

    with OAuth2Session(
        client_id=client_id,
        client_secret=key,
        scope=ASKED,
        token_endpoint_auth_method=PrivateKeyJWT(
            live.token_url,
            alg="RS384",
            headers={"kid": key.kid},
            claims={"exp": int(time.time()) + 240},
        ),
    ) as oauth:
        return dict(oauth.fetch_token(live.token_url, grant_type="client_credentials"))


def _jwk_file(tmp_path: Path, key: Any) -> str:
    path = tmp_path / "client.jwk.json"
    path.write_text(json.dumps(key.as_dict(private=True)), encoding="utf-8")
    return str(path)


def test_fhirpy(live: Live, tmp_path: Path) -> None:
    key = rsa_key()
    client = live.register("--jwk-file", _jwk_file(tmp_path, key))
    family = _family()
    results = _steps(_Fhirpy(live.base, _authlib_token(live, client["client_id"], key)), family)
    _assert_steps(results, family, ASKED)


class _Fhirclient:
    """fhirclient (SMART's Python client): its backend-services flow, where the app hands it a
    signed assertion (``jwt_token``) and it finds the token endpoint in the
    CapabilityStatement and asks for its default scopes; then its resource models."""

    def __init__(self, live: Live, client_id: str, key: Any) -> None:
        now = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": live.token_url,
            "exp": now + 240,
            "jti": str(uuid.uuid4()),
        }
        assertion = jwt.encode({"alg": "RS384", "kid": key.kid}, claims, key, ["RS384"])
        smart = FHIRClient(
            settings={"app_id": client_id, "api_base": live.base, "jwt_token": assertion}
        )
        assert not smart.prepare()  # the CapabilityStatement read; no token yet
        smart.authorize()
        self.scope = str(smart.launch_context["scope"])
        self.server = smart.server

    def _model(self, resource: Resource) -> Any:
        return FHIRElementFactory.instantiate(resource["resourceType"], resource)

    def create(self, resource: Resource) -> Resource:
        return dict(self._model(resource).create(self.server))

    def read(self, resource_type: str, resource_id: str) -> Resource:
        model = FHIRElementFactory.instantiate(resource_type, None)
        return dict(type(model).read(resource_id, self.server).as_json())

    def update(self, resource: Resource) -> Resource:
        return dict(self._model(resource).update(self.server))

    def remove(self, resource_type: str, resource_id: str) -> None:
        self._model({"resourceType": resource_type, "id": resource_id}).delete(self.server)

    def search(
        self, resource_type: str, params: dict[str, str]
    ) -> tuple[list[Resource], list[Resource]]:
        model = type(FHIRElementFactory.instantiate(resource_type, None))
        pages = [
            [entry.resource.as_json() for entry in bundle.entry or []]
            for bundle in model.where(struct=params).perform_iter(self.server)
        ]
        return pages[0], [resource for page in pages for resource in page]

    def bundle(self, bundle: Resource) -> Resource:
        return dict(self._model(bundle).create(self.server))

    def read_status(self, resource_type: str, resource_id: str) -> int | str:
        try:
            self.read(resource_type, resource_id)
        except requests.HTTPError as error:
            return int(error.response.status_code)
        return 200


def test_fhirclient(live: Live, tmp_path: Path) -> None:
    """fhirclient asks for ``launch/patient user/*.* patient/*.read openid profile`` by
    default; a client registered for ``user/*.cruds`` gets ``user/*.*`` and nothing else."""
    key = rsa_key()
    client = live.register("--jwk-file", _jwk_file(tmp_path, key), scopes="user/*.cruds")
    family = _family()
    results = _steps(_Fhirclient(live, client["client_id"], key), family)
    _assert_steps(results, family, "user/*.*")


def test_medplum_client(live: Live) -> None:
    family = _family()
    results = _node("medplum.mjs", live, live.register("--secret"), family)
    _assert_steps(results, family, REGISTERED)


def test_fhir_kit_client(live: Live) -> None:
    family = _family()
    results = _node("fhir-kit.mjs", live, live.register("--secret"), family)
    _assert_steps(results, family, ASKED)
