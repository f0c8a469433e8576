//! What a new user sees first: the binary run standalone, with no
//! Kubernetes config anywhere, says once and in one line that Kubernetes is
//! off, what that disables and how to require it; nothing is logged as a
//! warning when nothing is wrong.

use std::process::Stdio;

use otlp_test_kit::free_port;

use crate::support::binary::{aggregator_command, lines_until, spawn};

const KUBERNETES_OFF: &str = "Kubernetes: off (no in-cluster config or kubeconfig); \
    XR status, fleet opt-ins and issued ingest tokens disabled; --kube on to require it";

#[test]
fn standalone_start_says_kubernetes_is_off_in_one_line_without_warnings() {
    let home = tempfile::tempdir().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut command = aggregator_command();
    command
        .env("HOME", home.path())
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .stderr(Stdio::from(log.reopen().unwrap()))
        .args(["--otlp-grpc-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--otlp-http-addr", &format!("127.0.0.1:{}", free_port())])
        .args(["--api-addr", &format!("127.0.0.1:{}", free_port())]);
    let (running, stdout) = spawn(command);
    let lines = lines_until(stdout, |line| line.contains("API reference"));
    drop(running);

    let said: Vec<&String> = lines.iter().filter(|l| l.contains("Kubernetes")).collect();
    assert_eq!(said.len(), 1, "{lines:#?}");
    assert_eq!(said[0].trim(), KUBERNETES_OFF);
    assert!(
        lines[0].starts_with("signal-aggregator ready"),
        "{lines:#?}"
    );

    let logged = std::fs::read_to_string(log.path()).unwrap();
    let loud: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
        .collect();
    assert!(loud.is_empty(), "a clean start logged: {loud:#?}");
    assert_eq!(
        logged.matches("kubeconfig").count(),
        logged.matches(KUBERNETES_OFF).count(),
        "the kubeconfig appears only in the one announcement: {logged}"
    );
}
