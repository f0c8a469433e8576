//! The binary's command line: render exit codes and output, and refusing to
//! serve without transport security.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_function-signals"))
}

fn example(path: &str) -> String {
    format!("{}/../examples/{path}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn render_prints_the_golden_output() {
    let out = bin()
        .args([
            "render",
            &example("ic-full/xr.yaml"),
            "--observed",
            &example("ic-full/observed"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(example("ic-full/expected.yaml")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

#[test]
fn render_of_an_unreadable_file_exits_2_with_a_message() {
    let out = bin()
        .args(["render", "/nonexistent/xr.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("cannot read /nonexistent/xr.yaml"),
        "{stderr}"
    );
}

#[test]
fn render_of_an_observed_file_without_the_annotation_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("x.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    )
    .unwrap();
    let out = bin()
        .args([
            "render",
            &example("ic-minimal/xr.yaml"),
            "--observed",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("crossplane.io/composition-resource-name")
    );
}

#[test]
fn render_of_a_bad_spec_fails_with_the_fatal_result_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let xr = dir.path().join("xr.yaml");
    std::fs::write(
        &xr,
        "apiVersion: modelplane.ai/v1alpha1\nkind: InferenceCluster\nmetadata:\n  name: c\nspec:\n  signals:\n    kinds:\n    - name: Capacity\n      sampleRate: 2\n",
    )
    .unwrap();
    let out = bin()
        .args(["render", xr.to_str().unwrap()])
        .output()
        .unwrap();
    // As `crossplane composition render` does: a Fatal result fails the
    // pipeline, nothing is printed, the error names the step.
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(
            "pipeline step \"signals\" returned a fatal result: spec.signals.kinds[0].sampleRate: must be between 0 and 1, got 2"
        ),
        "{stderr}"
    );
}

#[test]
fn render_prints_warning_results_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let xr = dir.path().join("xr.yaml");
    // SingleCluster with the agent outside the token namespace and no
    // tokenSecretRef: rendered, with a Warning.
    std::fs::write(
        &xr,
        "apiVersion: modelplane.ai/v1alpha1\nkind: InferenceCluster\nmetadata:\n  name: c\nspec:\n  signals:\n    kinds:\n    - name: Capacity\n    agent:\n      namespace: signals\n",
    )
    .unwrap();
    let input = dir.path().join("input.yaml");
    std::fs::write(
        &input,
        "apiVersion: signals.fn.modelplane.ai/v1beta1\nkind: Input\nmode: SingleCluster\n",
    )
    .unwrap();
    let render = |extra: &[&str]| {
        let out = bin()
            .args([
                "render",
                xr.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(!render(&[]).contains("kind: Result"));
    let with_results = render(&["-r"]);
    assert!(
        with_results.contains(
            "kind: Result\nmessage: 'Pipeline step \"signals\": the agent runs in namespace signals"
        ),
        "{with_results}"
    );
    assert!(
        with_results.contains("reason: IngestTokenUnreachable\nseverity: Warning\n"),
        "{with_results}"
    );
}

#[test]
fn serving_without_tls_or_insecure_is_refused() {
    let out = bin()
        .env_remove("TLS_SERVER_CERTS_DIR")
        .args(["--address", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("refusing to serve without transport security"),
        "{stderr}"
    );
    assert!(stderr.contains("--insecure"), "{stderr}");
}

#[test]
fn a_bad_ttl_flag_is_a_usage_error() {
    let out = bin()
        .args(["--ttl", "forever", "--insecure"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("forever"));
}

#[test]
fn serves_run_function_over_grpc() {
    use function_sdk_rust::proto::v1::function_runner_service_client::FunctionRunnerServiceClient;
    use function_signals::render_cmd::{RenderArgs, build_request};

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = bin()
        .args([
            "--insecure",
            "--address",
            &format!("127.0.0.1:{port}"),
            "--metrics-address",
            "",
            "--ttl",
            "45s",
        ])
        .spawn()
        .unwrap();
    let req = build_request(&RenderArgs {
        xr: example("ic-minimal/xr.yaml").into(),
        observed: None,
        input: None,
    })
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let rsp = runtime.block_on(async {
        for _ in 0..100 {
            if let Ok(mut client) =
                FunctionRunnerServiceClient::connect(format!("http://127.0.0.1:{port}")).await
            {
                return client.run_function(req.clone()).await.unwrap().into_inner();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the function never listened on {port}");
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let meta = rsp.meta.unwrap();
    assert_eq!(meta.tag, "render");
    assert_eq!(meta.ttl.unwrap().seconds, 45);
    assert!(
        rsp.desired
            .unwrap()
            .resources
            .contains_key("signals-agent-deployment")
    );
}
