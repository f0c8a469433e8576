"""`crossplane xpkg build` of both packages, read back as Crossplane's package
manager reads them: the image config's layer labels, the `base` layer's
package.yaml, the examples layer and, for the Function, the runtime the
package embeds (started and called)."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from crossplane.function.proto.v1 import run_function_pb2_grpc as fngrpc

from function.fnclient import RenderCase, fatal_results
from harness import peers
from harness.procs import Process, free_port

from .xp import EXAMPLES, PACKAGE, XRDS, crossplane, load_yaml

BUILD_RUNTIME = PACKAGE / "function" / "build-runtime.sh"
XPKG_LABEL_PREFIX = "io.crossplane.xpkg:"


class ImageTarball:
    """A `docker save`-style image tarball (what go-containerregistry's
    tarball.Write produces for both the runtime image and the xpkg)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with tarfile.open(path) as tar:
            (self.manifest,) = json.load(tar.extractfile("manifest.json"))
            self.config = json.load(tar.extractfile(self.manifest["Config"]))

    def layer_names(self) -> list[str]:
        return list(self.manifest["Layers"])

    def layer_files(self, layer: str) -> dict[str, tarfile.TarInfo]:
        with tarfile.open(self.path) as outer:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                return {m.name: m for m in inner.getmembers()}

    def read(self, layer: str, member: str) -> bytes:
        with tarfile.open(self.path) as outer:
            with tarfile.open(fileobj=outer.extractfile(layer)) as inner:
                return inner.extractfile(member).read()

    def layer_by_label(self, value: str) -> str:
        """The layer Crossplane finds through the config label
        io.crossplane.xpkg:sha256:<layer digest> = value."""
        labels = self.config["config"].get("Labels") or {}
        digests = [k[len(XPKG_LABEL_PREFIX):] for k, v in labels.items() if k.startswith(XPKG_LABEL_PREFIX) and v == value]
        assert len(digests) == 1, labels
        digest = digests[0].split(":", 1)[1]
        return next(layer for layer in self.layer_names() if layer.startswith(digest))


def package_documents(pkg: ImageTarball) -> list[dict[str, Any]]:
    text = pkg.read(pkg.layer_by_label("base"), "package.yaml").decode()
    return [d for d in yaml.safe_load_all(text) if d is not None]


def example_documents(pkg: ImageTarball) -> list[dict[str, Any]]:
    text = pkg.read(pkg.layer_by_label("upbound"), ".up/examples.yaml").decode()
    return [d for d in yaml.safe_load_all(text) if d is not None]


def without_status(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "status"}


def crane_export(image: Path, dest: Path) -> dict[str, tarfile.TarInfo]:
    """The image's flattened filesystem as a container runtime would see it."""
    out = dest / f"{image.stem}-fs.tar"
    with image.open("rb") as stdin:
        subprocess.run([str(peers.crane()), "export", "-", str(out)], stdin=stdin, check=True, timeout=120)
    with tarfile.open(out) as tar:
        members = {m.name.lstrip("/"): m for m in tar.getmembers()}
        tar.extractall(dest / f"{image.stem}-fs", filter="fully_trusted")
    return members


def test_configuration_package(tmp_path):
    out = tmp_path / "modelplane-signals.xpkg"
    run = crossplane(
        "xpkg", "build",
        f"--package-root={PACKAGE / 'configuration'}",
        f"--examples-root={EXAMPLES}",
        f"--package-file={out}",
    )
    assert run.returncode == 0, run.explain()
    pkg = ImageTarball(out)
    docs = package_documents(pkg)
    assert [d["kind"] for d in docs] == [
        "Configuration", "CompositeResourceDefinition", "CompositeResourceDefinition", "Composition", "Composition",
    ]
    # The CLI re-encodes the meta object from its Go type, adding an empty status.
    assert without_status(docs[0]) == load_yaml(PACKAGE / "configuration" / "crossplane.yaml")[0]
    # The package's apis/ are symlinks; the package holds the XRDs themselves.
    xrds = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CompositeResourceDefinition"}
    for path in sorted(XRDS.glob("*.yaml")):
        xrd = load_yaml(path)[0]
        assert without_status(xrds[xrd["metadata"]["name"]]) == xrd
    compositions = {d["metadata"]["name"] for d in docs if d["kind"] == "Composition"}
    assert compositions == {"inferenceclusters-signals.modelplane.ai", "modelservices-signals.modelplane.ai"}
    examples = example_documents(pkg)
    assert {(d["kind"], d["metadata"]["name"]) for d in examples if d["kind"] in ("InferenceCluster", "ModelService")} >= {
        ("InferenceCluster", "us-east-1"), ("InferenceCluster", "eu-west-4"), ("ModelService", "chat"),
    }
    assert len(pkg.layer_names()) == 2


def test_package_metadata_is_checked_by_the_cli(tmp_path):
    """The linter really runs: a Configuration carrying a CRD (only a Provider
    or Function package may), and a Function with a malformed Crossplane
    version constraint, are refused."""
    root = tmp_path / "cfg"
    (root / "apis").mkdir(parents=True)
    (root / "crossplane.yaml").write_text((PACKAGE / "configuration" / "crossplane.yaml").read_text())
    crd = PACKAGE / "function" / "input" / "signals.fn.modelplane.ai_inputs.yaml"
    (root / "apis" / crd.name).write_text(crd.read_text())
    run = crossplane("xpkg", "build", f"--package-root={root}", f"--examples-root={tmp_path / 'none'}", f"--package-file={tmp_path / 'a.xpkg'}")
    assert run.returncode != 0
    assert "failed to lint package: object did not pass any of the linters" in run.stderr, run.explain()
    assert "object is not an XRD" in run.stderr

    root = tmp_path / "fn"
    root.mkdir()
    meta = load_yaml(PACKAGE / "function" / "crossplane.yaml")[0]
    meta["spec"]["crossplane"]["version"] = ">=v2.0.0 ||| nonsense"
    (root / "crossplane.yaml").write_text(yaml.safe_dump(meta))
    run = crossplane("xpkg", "build", f"--package-root={root}", f"--examples-root={tmp_path / 'none'}", f"--package-file={tmp_path / 'b.xpkg'}")
    assert run.returncode != 0
    assert "package version constraints are poorly formatted" in run.stderr, run.explain()


def is_static_elf(path: Path) -> bool:
    """No PT_INTERP program header: the kernel runs it without a dynamic loader."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, "a 64-bit ELF"
    phoff = int.from_bytes(data[0x20:0x28], "little")
    phentsize = int.from_bytes(data[0x36:0x38], "little")
    phnum = int.from_bytes(data[0x38:0x3A], "little")
    types = [int.from_bytes(data[phoff + i * phentsize: phoff + i * phentsize + 4], "little") for i in range(phnum)]
    PT_INTERP = 3
    return PT_INTERP not in types


@pytest.fixture(scope="module")
def function_package(tmp_path_factory):
    """package/function/build-runtime.sh, run as a user would: a static release
    build (cargo is a no-op when it is current), the runtime image through
    crane, the package through the Crossplane CLI."""
    out = tmp_path_factory.mktemp("function-package")
    env = dict(os.environ, CRANE=str(peers.crane()), CROSSPLANE=str(peers.crossplane()))
    result = subprocess.run([str(BUILD_RUNTIME), str(out)], env=env, capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    return out


def test_runtime_image(function_package, tmp_path):
    image = ImageTarball(function_package / "runtime.tar")
    config = image.config
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert config["config"]["Entrypoint"] == ["/function-signals"]
    assert not config["config"].get("Cmd"), "render's Docker runtime passes --insecure as the only argument"
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["ExposedPorts"] == {"9443/tcp": {}}
    assert len(image.layer_names()) == 1
    files = crane_export(function_package / "runtime.tar", tmp_path)
    assert set(files) == {"function-signals", "etc", "etc/passwd", "etc/group"}
    binary = files["function-signals"]
    assert binary.mode & 0o777 == 0o755 and binary.uid == 0
    assert is_static_elf(tmp_path / "runtime-fs" / "function-signals")
    passwd = (tmp_path / "runtime-fs" / "etc" / "passwd").read_text()
    assert "nonroot:x:65532:65532:" in passwd


def test_function_package_embeds_the_runtime_and_the_metadata(function_package):
    pkg = ImageTarball(function_package / "function-signals.xpkg")
    runtime = ImageTarball(function_package / "runtime.tar")
    # The runtime's layer first, then the package and examples layers on top.
    assert len(pkg.layer_names()) == 3
    assert pkg.config["rootfs"]["diff_ids"][0] == runtime.config["rootfs"]["diff_ids"][0]
    for key in ("Entrypoint", "User", "ExposedPorts"):
        assert pkg.config["config"][key] == runtime.config["config"][key], key
    docs = package_documents(pkg)
    assert [d["kind"] for d in docs] == ["Function", "CustomResourceDefinition"]
    assert without_status(docs[0]) == load_yaml(PACKAGE / "function" / "crossplane.yaml")[0]
    assert without_status(docs[1]) == load_yaml(PACKAGE / "function" / "input" / "signals.fn.modelplane.ai_inputs.yaml")[0]
    assert docs[0]["metadata"]["name"].startswith("function-")
    examples = example_documents(pkg)
    assert any(d["kind"] == "Composition" for d in examples)


def test_the_packaged_binary_serves_render_requests(function_package, tmp_path):
    """The binary inside the package, started the way `crossplane render`'s
    Docker runtime starts the image (entrypoint plus --insecure), answers a
    RunFunction like the workspace build does."""
    files = crane_export(function_package / "function-signals.xpkg", tmp_path)
    assert {"function-signals", "package.yaml", ".up/examples.yaml"} <= set(files)
    binary = tmp_path / "function-signals-fs" / "function-signals"
    port = free_port()
    case = RenderCase(EXAMPLES / "ic-minimal" / "xr.yaml")
    with Process([binary, "--insecure", "--address", f"127.0.0.1:{port}", "--metrics-address", ""], name="packaged-function-signals") as proc:
        proc.wait_for_port(port, timeout=30)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            rsp = fngrpc.FunctionRunnerServiceStub(channel).RunFunction(case.request(tag="pkg"), timeout=10)
    assert rsp.meta.tag == "pkg"
    assert not fatal_results(rsp)
    assert len(rsp.desired.resources) == 6
