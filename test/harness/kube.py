"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and
kube-controller-manager, all built from Go modules by test/peers/build.sh.

The API server runs with RBAC authorization and client-certificate
authentication (one CA signs the serving cert and every test identity);
ServiceAccounts get real tokens through the TokenRequest API. The controller
manager runs the garbage collector (owner references) and the namespace
controller. `ControlPlane.start()` returns once the API server is ready and the
default namespace exists.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import requests
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from harness import peers
from harness.procs import Process, free_port

ADMIN = ("modelplane-test-admin", ("system:masters",))


def _pem_key(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CertificateAuthority:
    """One self-signed CA for the serving certificate and the client certificates."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "modelplane-test-ca")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_path = directory / "ca.crt"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, stem: str, common_name: str, organizations: Iterable[str] = (),
              server: bool = False) -> tuple[Path, Path]:
        """Writes `<stem>.crt` and `<stem>.key`; a client cert's O= entries are its groups."""
        key = ec.generate_private_key(ec.SECP256R1())
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        attributes += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (
            x509.CertificateBuilder().subject_name(x509.Name(attributes))
            .issuer_name(self.cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("kubernetes.default.svc"),
            ]), critical=False).add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        else:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        cert_path, key_path = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
        return cert_path, key_path


class KubeError(AssertionError):
    """The API server answered with an error status; carries its Status object."""

    def __init__(self, response: requests.Response) -> None:
        self.status_code = response.status_code
        try:
            self.status = response.json()
        except ValueError:
            self.status = {"message": response.text}
        super().__init__(f"{response.request.method} {response.url} -> {response.status_code}: "
                         f"{self.status.get('message', self.status)}")

    @property
    def reason(self) -> str:
        return self.status.get("reason", "")

    @property
    def message(self) -> str:
        return self.status.get("message", "")


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the REST API."""

    group_version: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
        root = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        path = root
        if self.namespaced:
            if namespace is None and name is not None:
                raise ValueError(f"{self.plural} is namespaced: give a namespace")
            if namespace is not None:
                path += f"/namespaces/{namespace}"
        path += f"/{self.plural}"
        if name is not None:
            path += f"/{name}"
        if subresource is not None:
            path += f"/{subresource}"
        return path


class KubeClient:
    """A thin REST client for one identity (client certificate or bearer token)."""

    def __init__(self, server: str, ca: Path, cert: tuple[Path, Path] | None = None,
                 token: str | None = None) -> None:
        self.server = server
        self.ca = str(ca)
        self._resources: dict[tuple[str, str], Resource] = {}
        self.session = requests.Session()
        if cert is not None:
            self.session.cert = (str(cert[0]), str(cert[1]))
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, expect_ok: bool = True, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        # Per request: REQUESTS_CA_BUNDLE in the environment would override a session's CA.
        kwargs.setdefault("verify", self.ca)
        response = self.session.request(method, self.server + path, **kwargs)
        if expect_ok and response.status_code >= 400:
            raise KubeError(response)
        return response

    def resource_of(self, obj: dict[str, Any]) -> Resource:
        """Where `obj`'s kind is served, from the API server's discovery (asked
        again on a miss: a CRD may have just been installed)."""
        key = (obj["apiVersion"], obj["kind"])
        if key not in self._resources:
            group_version = obj["apiVersion"]
            path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
            for entry in self.get(path)["resources"]:
                if "/" not in entry["name"]:
                    self._resources[(group_version, entry["kind"])] = Resource(
                        group_version, entry["name"], entry["namespaced"])
        if key not in self._resources:
            raise KeyError(f"the API server serves no {key}")
        return self._resources[key]

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", path, params=params).json()

    def get_object(self, obj_or_kind: dict[str, Any], name: str | None = None,
                   namespace: str | None = None) -> dict[str, Any]:
        resource = self.resource_of(obj_or_kind)
        meta = obj_or_kind.get("metadata", {})
        return self.get(resource.path(namespace or meta.get("namespace"), name or meta["name"]))

    def exists(self, obj: dict[str, Any]) -> bool:
        resource = self.resource_of(obj)
        meta = obj["metadata"]
        response = self.request("GET", resource.path(meta.get("namespace"), meta["name"]), expect_ok=False)
        if response.status_code == 404:
            return False
        if response.status_code >= 400:
            raise KubeError(response)
        return True

    def create(self, obj: dict[str, Any], manager: str = "modelplane-tests",
               dry_run: bool = False) -> dict[str, Any]:
        """POST with strict field validation, as `kubectl create` sends it."""
        resource = self.resource_of(obj)
        params: dict[str, Any] = {"fieldManager": manager, "fieldValidation": "Strict"}
        if dry_run:
            params["dryRun"] = "All"
        return self.request("POST", resource.path(obj["metadata"].get("namespace")), params=params, json=obj).json()

    def apply(self, obj: dict[str, Any], manager: str = "modelplane-tests", subresource: str | None = None,
              force: bool = True, dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply (PATCH application/apply-patch+yaml), with strict
        field validation as `kubectl apply --server-side` sends by default: an
        unknown field is refused rather than silently pruned."""
        resource = self.resource_of(obj)
        meta = obj["metadata"]
        params: dict[str, Any] = {"fieldManager": manager, "fieldValidation": "Strict"}
        if force:
            params["force"] = "true"
        if dry_run:
            params["dryRun"] = "All"
        return self.request(
            "PATCH", resource.path(meta.get("namespace"), meta["name"], subresource), params=params,
            data=json.dumps(obj), headers={"Content-Type": "application/apply-patch+yaml"},
        ).json()

    def merge_patch(self, obj: dict[str, Any], patch: dict[str, Any],
                    subresource: str | None = None) -> dict[str, Any]:
        resource = self.resource_of(obj)
        meta = obj["metadata"]
        return self.request(
            "PATCH", resource.path(meta.get("namespace"), meta["name"], subresource),
            data=json.dumps(patch), headers={"Content-Type": "application/merge-patch+json"},
        ).json()

    def delete(self, obj: dict[str, Any], propagation: str = "Background") -> None:
        resource = self.resource_of(obj)
        meta = obj["metadata"]
        response = self.request("DELETE", resource.path(meta.get("namespace"), meta["name"]), expect_ok=False,
                                json={"propagationPolicy": propagation})
        if response.status_code not in (200, 202, 404):
            raise KubeError(response)

    def wait_for(self, what: str, predicate, timeout: float = 30.0, interval: float = 0.1):
        """Polls `predicate()` until it returns something truthy (and returns it)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager, in a temporary directory."""

    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="modelplane-kube-"))
        self.pki = self.workdir / "pki"
        self.pki.mkdir(parents=True, exist_ok=True)
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.apiserver_port = free_port()
        self.server = f"https://127.0.0.1:{self.apiserver_port}"
        self.etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        self.startup_seconds: dict[str, float] = {}
        self._processes: list[Process] = []

    # -- start and stop ---------------------------------------------------

    def start(self) -> "ControlPlane":
        started = time.monotonic()
        self._write_pki()
        self.etcd = Process([
            peers.peer("ETCD_BIN"), "--name", "modelplane-test",
            "--data-dir", self.workdir / "etcd",
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.etcd_peer_port}",
            "--initial-cluster", f"modelplane-test=http://127.0.0.1:{self.etcd_peer_port}",
            # Test data need not survive a power cut; fsync dominates start-up on a VM.
            "--unsafe-no-fsync", "--log-level", "warn",
        ], name="etcd")
        self.etcd.start()
        self._processes.append(self.etcd)
        self.etcd.wait_for_port(self.etcd_port, timeout=30)
        self.startup_seconds["etcd"] = time.monotonic() - started

        self.apiserver = Process(self._apiserver_argv(), name="kube-apiserver")
        self._processes.append(self.apiserver)
        self._start_apiserver()
        self.startup_seconds["kube-apiserver"] = time.monotonic() - started

        self.write_kubeconfig(self.kubeconfig_path("admin"), cert=self.admin_cert)
        self.controller_manager = Process([
            peers.peer("KUBE_CONTROLLER_MANAGER_BIN"),
            "--kubeconfig", self.kubeconfig_path("admin"),
            "--controllers", "garbagecollector,namespace,serviceaccount-token,serviceaccount",
            "--use-service-account-credentials=false", "--leader-elect=false",
            "--bind-address", "127.0.0.1", "--secure-port", str(free_port()),
            "--service-account-private-key-file", self.pki / "sa.key",
            "--root-ca-file", self.ca.cert_path,
            "--cert-dir", self.workdir / "kcm-certs",
        ], name="kube-controller-manager")
        self.controller_manager.start()
        self._processes.append(self.controller_manager)
        self.admin.wait_for("the default ServiceAccount (controller manager running)",
                            lambda: self._default_service_account(), timeout=60)
        self.startup_seconds["ready"] = time.monotonic() - started
        return self

    def _write_pki(self) -> None:
        self.ca = CertificateAuthority(self.pki)
        self.serving_cert = self.ca.issue("apiserver", "kube-apiserver", server=True)
        self.admin_cert = self.ca.issue("admin", ADMIN[0], ADMIN[1])
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (self.pki / "sa.key").write_bytes(_pem_key(sa_key))
        (self.pki / "sa.pub").write_bytes(sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.admin = KubeClient(self.server, self.ca.cert_path, cert=self.admin_cert)

    def _apiserver_argv(self) -> list[Any]:
        return [
            peers.peer("KUBE_APISERVER_BIN"),
            "--etcd-servers", self.etcd_url,
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
            "--secure-port", str(self.apiserver_port),
            "--tls-cert-file", self.serving_cert[0], "--tls-private-key-file", self.serving_cert[1],
            "--client-ca-file", self.ca.cert_path,
            "--authorization-mode", "RBAC",
            "--service-account-key-file", self.pki / "sa.pub",
            "--service-account-signing-key-file", self.pki / "sa.key",
            "--service-account-issuer", "https://kubernetes.default.svc",
            "--api-audiences", "https://kubernetes.default.svc",
            "--service-cluster-ip-range", "10.96.0.0/24",
            # The `kubernetes` Service's endpoints would name this loopback
            # address, which the endpoint reconciler refuses; nothing here needs them.
            "--endpoint-reconciler-type", "none",
            "--cert-dir", self.workdir / "apiserver-certs",
            # Nothing here runs pods; the ServiceAccount admission plugin would
            # only slow Secret writes down.
            "--disable-admission-plugins", "ServiceAccount",
            "--allow-privileged=false", "--v", "1",
        ]

    def _start_apiserver(self) -> None:
        self.apiserver.start()
        self.apiserver.wait_for_port(self.apiserver_port, timeout=60)
        self.admin.wait_for("kube-apiserver /readyz", self._ready, timeout=90)

    def _ready(self) -> bool:
        if not self.apiserver.running():
            raise self.apiserver.failure(f"exited with status {self.apiserver.returncode} before it was ready")
        try:
            return self.admin.request("GET", "/readyz", expect_ok=False, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def _default_service_account(self) -> bool:
        response = self.admin.request("GET", "/api/v1/namespaces/default/serviceaccounts/default",
                                      expect_ok=False)
        return response.status_code == 200

    def restart_apiserver(self) -> None:
        """Stops the API server (closing every watch) and starts it again on the same port."""
        self.apiserver.stop()
        self._start_apiserver()

    def stop(self) -> None:
        for process in reversed(self._processes):
            process.stop()

    def __enter__(self) -> "ControlPlane":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- identities -------------------------------------------------------

    def kubeconfig_path(self, name: str) -> Path:
        return self.workdir / f"{name}.kubeconfig"

    def write_kubeconfig(self, path: Path, cert: tuple[Path, Path] | None = None,
                         token: str | None = None) -> Path:
        user: dict[str, Any] = {}
        if cert is not None:
            user = {"client-certificate": str(cert[0]), "client-key": str(cert[1])}
        if token is not None:
            user = {"token": token}
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.server,
                                                       "certificate-authority": str(self.ca.cert_path)}}],
            "users": [{"name": "test", "user": user}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def user(self, name: str, groups: Iterable[str] = ()) -> KubeClient:
        """A client authenticated as user `name` (client certificate), with no rights until bound."""
        cert = self.ca.issue(f"user-{name}", name, groups)
        return KubeClient(self.server, self.ca.cert_path, cert=cert)

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A token for the ServiceAccount from the TokenRequest API (creating the account)."""
        self.ensure_namespace(namespace)
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}}
        self.admin.apply(account)
        response = self.admin.request(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                  "spec": {"expirationSeconds": seconds}},
        )
        return response.json()["status"]["token"]

    def service_account(self, namespace: str, name: str) -> tuple[KubeClient, Path]:
        """A client and a kubeconfig file for the ServiceAccount."""
        token = self.service_account_token(namespace, name)
        path = self.write_kubeconfig(self.kubeconfig_path(f"sa-{namespace}-{name}"), token=token)
        return KubeClient(self.server, self.ca.cert_path, token=token), path

    # -- objects ----------------------------------------------------------

    def ensure_namespace(self, name: str) -> None:
        self.admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def apply_documents(self, documents: Iterable[dict[str, Any]], manager: str = "modelplane-tests") -> None:
        for document in documents:
            self.admin.apply(document, manager=manager)

    def wait_for_crds_established(self, names: Iterable[str], timeout: float = 60.0) -> None:
        for name in names:
            def established(name: str = name) -> bool:
                response = self.admin.request(
                    "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", expect_ok=False)
                if response.status_code != 200:
                    return False
                conditions = response.json().get("status", {}).get("conditions") or []
                return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)
            self.admin.wait_for(f"CRD {name} established", established, timeout=timeout)

    # -- etcd -------------------------------------------------------------

    def etcd_revision(self) -> int:
        response = requests.post(f"{self.etcd_url}/v3/kv/range",
                                 json={"key": base64.b64encode(b"/").decode()}, timeout=10)
        response.raise_for_status()
        return int(response.json()["header"]["revision"])

    def compact_etcd(self) -> int:
        """Compacts etcd up to its current revision, so every older resourceVersion
        is gone (a watch resumed from one gets 410 Gone). Returns the revision."""
        revision = self.etcd_revision()
        response = requests.post(f"{self.etcd_url}/v3/kv/compaction",
                                 json={"revision": str(revision), "physical": True}, timeout=30)
        response.raise_for_status()
        return revision


def pause(process: Process) -> None:
    os.kill(process.pid, signal.SIGSTOP)


def resume(process: Process) -> None:
    os.kill(process.pid, signal.SIGCONT)
