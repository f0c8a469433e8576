"""Transport security: mTLS with --tls-certs-dir, refusal without credentials."""

import grpc
import pytest
from crossplane.function.proto.v1 import run_function_pb2_grpc as fngrpc

from harness.binaries import cargo_bin
from harness.procs import Process

from .certs import issue, make_ca, write_server_dir
from .fnclient import BINARY, FIXTURES, FunctionServer, load_one, request


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = make_ca("function-signals-test-ca")
    directory = write_server_dir(tmp_path_factory.mktemp("tls"), ca, issue(ca, "function-signals", server=True))
    return {
        "ca": ca,
        "dir": directory,
        "client": issue(ca, "crossplane", server=False),
        "stranger": issue(make_ca("some-other-ca"), "crossplane", server=False),
    }


def secure_call(address, ca, client=None, timeout=5):
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.cert_pem,
        private_key=client.key_pem if client else None,
        certificate_chain=client.cert_pem if client else None,
    )
    xr = load_one(FIXTURES / "inferencecluster-minimal.yaml")
    with grpc.secure_channel(address, credentials) as ch:
        return fngrpc.FunctionRunnerServiceStub(ch).RunFunction(request(xr, tag="mtls"), timeout=timeout)


@pytest.fixture(scope="module")
def mtls_server(pki):
    with FunctionServer("--tls-certs-dir", str(pki["dir"]), insecure=False) as srv:
        yield srv


def test_client_with_a_certificate_from_the_ca_is_served(mtls_server, pki):
    rsp = secure_call(mtls_server.address, pki["ca"], pki["client"])
    assert rsp.meta.tag == "mtls"
    assert rsp.meta.ttl.seconds == 60


def test_client_without_a_certificate_is_refused(mtls_server, pki):
    with pytest.raises(grpc.RpcError) as refused:
        secure_call(mtls_server.address, pki["ca"], client=None)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert mtls_server.process.running(), "a refused handshake must not take the server down"


def test_client_with_a_certificate_from_another_ca_is_refused(mtls_server, pki):
    with pytest.raises(grpc.RpcError) as refused:
        secure_call(mtls_server.address, pki["ca"], pki["stranger"])
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_plaintext_client_is_refused(mtls_server):
    with grpc.insecure_channel(mtls_server.address) as ch:
        stub = fngrpc.FunctionRunnerServiceStub(ch)
        with pytest.raises(grpc.RpcError) as refused:
            stub.RunFunction(request(load_one(FIXTURES / "inferencecluster-minimal.yaml")), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_certs_dir_can_come_from_the_environment(pki):
    with FunctionServer(insecure=False, env={"TLS_SERVER_CERTS_DIR": str(pki["dir"])}) as srv:
        assert secure_call(srv.address, pki["ca"], pki["client"]).meta.tag == "mtls"


def test_insecure_wins_when_both_are_given(pki):
    with FunctionServer("--tls-certs-dir", str(pki["dir"])) as srv:
        assert srv.run(request(load_one(FIXTURES / "inferencecluster-minimal.yaml"), tag="both")).meta.tag == "both"


def test_refuses_to_start_without_tls_or_insecure():
    with Process([cargo_bin(BINARY), "--address", "127.0.0.1:0"], name="no-credentials") as proc:
        status = proc.wait(timeout=30)
    assert status != 0
    log = proc.log_text()
    assert "--insecure" in log and "--tls-certs-dir" in log, log


def test_missing_certificate_files_fail_clearly(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with Process(
        [cargo_bin(BINARY), "--address", "127.0.0.1:0", "--tls-certs-dir", empty], name="no-files"
    ) as proc:
        status = proc.wait(timeout=30)
    assert status != 0
    assert "tls.crt" in proc.log_text() or "ca.crt" in proc.log_text() or "tls.key" in proc.log_text(), proc.log_text()
