//! The Helm chart in `charts/outboxd`, rendered by the real `helm` and checked against outboxd
//! itself, without a Kubernetes cluster.
//!
//! - `helm lint --strict` with the defaults and with every `ci/*-values.yaml`;
//! - the manifests `helm template` renders for them pass the Kubernetes JSON schemas (strict: no
//!   unknown field) of `kubernetes-validate`;
//! - the rendered objects parsed (serde_norway) and checked field by field: the restricted
//!   security context, the probes on the port outboxd listens on, the passwords from Secrets, the
//!   grace period computed from `pipeline.shutdown_timeout_ms`, the strategy for one and two
//!   replicas, the ConfigMap's `outboxd.toml` through outboxd's own parser and resolver, the
//!   connector JSON through `outboxd import-debezium`, the ServiceMonitor selecting the Service,
//!   the PrometheusRule's expressions using metrics that `Metrics::render` exports and
//!   docs/metrics.md documents;
//! - what the chart refuses (a grace period too short, a password in the URL, a surging rolling
//!   update with one replica, values the schema does not allow), and that its README and
//!   values.schema.json cover every value of values.yaml.
//!
//! helm and kubernetes-validate come from scripts/install-deps.sh (`.tools/helm/bin/helm`,
//! `.tools/kube-validate/bin/kubernetes-validate`); HELM_BIN and KUBERNETES_VALIDATE_BIN name
//! others.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{json, Value};

#[path = "support/catalog.rs"]
mod catalog;

use outboxd::config::Config;
use outboxd::pipeline::Plan;

const RELEASE: &str = "rel";
const NAMESPACE: &str = "outboxd-test";
/// The full name of the release's objects: `<release>-<chart>`.
const FULLNAME: &str = "rel-outboxd";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("charts/outboxd")
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A tool from scripts/install-deps.sh, or the one `env_var` names.
fn tool(env_var: &str, rel: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return PathBuf::from(p);
    }
    let path = root().join(rel);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-deps.sh (or set {env_var})",
        path.display()
    );
    path
}

/// helm, with its cache, configuration and data in a directory of this test run (no
/// repositories, no plugins, nothing of the user's).
fn helm() -> Command {
    static HOME: OnceLock<tempfile::TempDir> = OnceLock::new();
    let home = HOME.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    let mut cmd = Command::new(tool("HELM_BIN", ".tools/helm/bin/helm"));
    for (var, sub) in [
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ] {
        cmd.env(var, home.path().join(sub));
    }
    cmd.current_dir(root());
    cmd
}

/// `helm template` of the chart with `args` (`-f FILE`, `--set k=v`, ...): (success, stdout,
/// stderr).
fn template_output(args: &[&str]) -> (bool, String, String) {
    let out = helm()
        .arg("template")
        .arg(RELEASE)
        .arg(chart())
        .args(["--namespace", NAMESPACE])
        .args(args)
        .output()
        .expect("run helm template");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The YAML documents of a multi-document text, as JSON values.
fn parse_docs(text: &str, origin: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{origin} is not valid YAML: {e}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The objects `helm template` renders with `args`; panics when it fails.
fn render(args: &[&str]) -> Rendered {
    let (ok, stdout, stderr) = template_output(args);
    assert!(ok, "helm template {args:?} failed:\n{stderr}");
    let docs = parse_docs(&stdout, &format!("helm template {args:?}"));
    for d in &docs {
        for field in ["apiVersion", "kind"] {
            assert!(d[field].is_string(), "{args:?}: an object without {field}");
        }
        assert!(
            d["metadata"]["name"].is_string(),
            "{args:?}: a {} without a name",
            d["kind"]
        );
    }
    Rendered {
        docs,
        args: args.iter().map(|s| s.to_string()).collect(),
    }
}

/// `helm template` with `args` must fail; returns its error output.
fn render_error(args: &[&str]) -> String {
    let (ok, _, stderr) = template_output(args);
    assert!(!ok, "helm template {args:?} should have failed");
    stderr
}

/// The values files of chart-testing and of these tests.
fn ci_values_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(chart().join("ci"))
        .expect("charts/outboxd/ci")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with("-values.yaml"))
        .map(|n| format!("charts/outboxd/ci/{n}"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 4,
        "expected the ci/*-values.yaml files, found {files:?}"
    );
    files
}

/// Every rendering the tests check as a whole: the defaults, then each ci values file.
fn all_renderings() -> Vec<Rendered> {
    let mut out = vec![render(&[])];
    for f in ci_values_files() {
        out.push(render(&["-f", &f]));
    }
    out
}

struct Rendered {
    docs: Vec<Value>,
    args: Vec<String>,
}

impl Rendered {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.docs.iter().filter(|d| d["kind"] == kind).collect()
    }

    fn one(&self, kind: &str) -> &Value {
        let found = self.all(kind);
        assert_eq!(
            found.len(),
            1,
            "{:?}: expected one {kind}, found {}",
            self.args,
            found.len()
        );
        found[0]
    }

    fn has(&self, kind: &str) -> bool {
        !self.all(kind).is_empty()
    }

    fn deployment(&self) -> &Value {
        self.one("Deployment")
    }

    fn pod(&self) -> &Value {
        &self.deployment()["spec"]["template"]["spec"]
    }

    fn pod_labels(&self) -> &serde_json::Map<String, Value> {
        self.deployment()["spec"]["template"]["metadata"]["labels"]
            .as_object()
            .expect("pod template labels")
    }

    fn container(&self) -> &Value {
        let containers = self.pod()["containers"].as_array().expect("containers");
        assert_eq!(containers.len(), 1, "one container");
        assert_eq!(containers[0]["name"], "outboxd");
        &containers[0]
    }

    fn env(&self, name: &str) -> Option<&Value> {
        self.container()["env"]
            .as_array()
            .expect("container env")
            .iter()
            .find(|e| e["name"] == name)
    }

    fn env_value(&self, name: &str) -> Option<String> {
        self.env(name)
            .and_then(|e| e["value"].as_str())
            .map(str::to_string)
    }

    /// `(Secret name, key)` of an environment variable taken from a Secret.
    fn env_secret(&self, name: &str) -> Option<(String, String)> {
        let r = &self.env(name)?["valueFrom"]["secretKeyRef"];
        Some((
            r["name"].as_str()?.to_string(),
            r["key"].as_str()?.to_string(),
        ))
    }

    /// The file outboxd reads (OUTBOXD_CONFIG): (ConfigMap name, key).
    fn config_file(&self) -> (String, String) {
        self.mounted_file("OUTBOXD_CONFIG")
    }

    /// The ConfigMap and key behind the path an environment variable names, through the pod's
    /// volume mounted at its directory.
    fn mounted_file(&self, var: &str) -> (String, String) {
        let path = self
            .env_value(var)
            .unwrap_or_else(|| panic!("{:?}: {var} is not set", self.args));
        let (dir, file) = path.rsplit_once('/').expect("an absolute path");
        let mount = self.container()["volumeMounts"]
            .as_array()
            .expect("volumeMounts")
            .iter()
            .find(|m| m["mountPath"] == dir)
            .unwrap_or_else(|| panic!("{:?}: nothing mounted at {dir}", self.args));
        assert_eq!(
            mount["readOnly"], true,
            "the configuration is mounted read-only"
        );
        let volume = self.pod()["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| v["name"] == mount["name"])
            .expect("the mounted volume");
        let cm = volume["configMap"]["name"]
            .as_str()
            .expect("a ConfigMap volume")
            .to_string();
        (cm, file.to_string())
    }

    /// A key of a ConfigMap the chart renders.
    fn configmap_data(&self, name: &str, key: &str) -> String {
        let cm = self
            .all("ConfigMap")
            .into_iter()
            .find(|c| c["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{:?}: no ConfigMap {name} rendered", self.args));
        cm["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("ConfigMap {name} has no key {key}"))
            .to_string()
    }

    /// The rendered outboxd.toml the container reads.
    fn config_toml(&self) -> String {
        let (cm, key) = self.config_file();
        self.configmap_data(&cm, &key)
    }

    /// The containerPort of a port name or number.
    fn container_port(&self, port: &Value) -> u64 {
        if let Some(n) = port.as_u64() {
            return n;
        }
        self.container()["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .find(|p| p["name"] == *port)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("no container port named {port}"))
    }

    fn grace_seconds(&self) -> u64 {
        self.pod()["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("terminationGracePeriodSeconds is set")
    }
}

/// Whether every `key: value` of `selector` is among `labels`.
fn selects(selector: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    let Some(sel) = selector.as_object() else {
        return false;
    };
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The port of `HOST:PORT`, asserting that HOST accepts connections from outside the pod.
fn listen_port(addr: &str) -> u64 {
    let (host, port) = addr.rsplit_once(':').expect("HOST:PORT");
    assert_eq!(
        host, "0.0.0.0",
        "{addr}: probes and Prometheus come from outside the pod"
    );
    port.parse().expect("a port number")
}

/// Parses `text` as outboxd does at start-up: the TOML parser, then the resolver (no I/O).
/// `${env:KAFKA_SASL_PASSWORD}`, which the chart's Secret provides at run time, stands for a
/// password here (outboxd resolves the references while it validates).
fn valid_config(text: &str, origin: &str) -> (Config, Plan) {
    let text = text.replace("${env:KAFKA_SASL_PASSWORD}", "stand-in");
    let config =
        Config::from_toml(&text).unwrap_or_else(|e| panic!("{origin} is refused by outboxd: {e}"));
    let plan = Plan::from_config(&config)
        .unwrap_or_else(|e| panic!("{origin} is refused by outboxd: {e}"));
    (config, plan)
}

/// A key of a TOML text, as written (references unresolved).
fn toml_key(text: &str, section: &str, key: &str) -> Option<String> {
    let v: toml::Value = toml::from_str(text).unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"));
    v.get(section)?.get(key)?.as_str().map(str::to_string)
}

fn cargo_version() -> String {
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    manifest["package"]["version"].as_str().unwrap().to_string()
}

/// The uid of the image's USER (docker/Dockerfile's last one).
fn image_uid() -> u64 {
    read("docker/Dockerfile")
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("USER "))
        .expect("a USER in docker/Dockerfile")
        .split(':')
        .next()
        .unwrap()
        .trim()
        .parse()
        .expect("a numeric USER")
}

// ---- the chart as a whole ------------------------------------------------------------------

#[test]
fn chart_yaml_is_a_v2_chart_of_outboxds_version() {
    let chart_yaml = &parse_docs(&read("charts/outboxd/Chart.yaml"), "Chart.yaml")[0];
    assert_eq!(chart_yaml["apiVersion"], "v2");
    assert_eq!(chart_yaml["name"], "outboxd");
    assert_eq!(chart_yaml["type"], "application");
    assert_eq!(
        chart_yaml["appVersion"].as_str(),
        Some(cargo_version().as_str()),
        "Chart.yaml's appVersion must be Cargo.toml's version"
    );
    let version = chart_yaml["version"].as_str().expect("version");
    assert!(
        regex::Regex::new(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")
            .unwrap()
            .is_match(version),
        "the chart's version {version} is not SemVer"
    );
    // The image tag defaults to the appVersion.
    let r = render(&[]);
    assert_eq!(
        r.container()["image"],
        format!("outboxd:{}", cargo_version())
    );
    let r = render(&[
        "--set",
        "image.registry=registry.example.com,image.repository=team/outboxd,image.tag=1.2.3",
    ]);
    assert_eq!(
        r.container()["image"],
        "registry.example.com/team/outboxd:1.2.3"
    );
    let digest = format!("sha256:{}", "a".repeat(64));
    let r = render(&["--set", &format!("image.digest={digest}")]);
    assert_eq!(r.container()["image"], format!("outboxd@{digest}"));
}

#[test]
fn helm_lint_passes_with_every_values_file() {
    let mut runs: Vec<Vec<String>> = vec![vec![]];
    for f in ci_values_files() {
        runs.push(vec!["-f".into(), f]);
    }
    for args in runs {
        let out = helm()
            .args(["lint", "--strict"])
            .arg(chart())
            .args(&args)
            .output()
            .expect("run helm lint");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("0 chart(s) failed"),
            "helm lint --strict {args:?} failed:\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn rendered_manifests_pass_the_kubernetes_schemas() {
    let validator = tool(
        "KUBERNETES_VALIDATE_BIN",
        ".tools/kube-validate/bin/kubernetes-validate",
    );
    let dir = tempfile::tempdir().unwrap();
    let mut runs: Vec<Vec<String>> = vec![vec![]];
    for f in ci_values_files() {
        runs.push(vec!["-f".into(), f]);
    }
    // The other modes too.
    runs.push(vec![
        "--set".into(),
        "existingConfigMap=mine,postgresql.password=x".into(),
    ]);
    for (i, args) in runs.iter().enumerate() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, stdout, stderr) = template_output(&args);
        assert!(ok, "helm template {args:?}: {stderr}");
        let file = dir.path().join(format!("rendered-{i}.yaml"));
        std::fs::write(&file, &stdout).unwrap();
        // Kubernetes' own kinds (the Prometheus Operator's have no schema there).
        let expected = parse_docs(&stdout, "rendered")
            .iter()
            .filter(|d| {
                !d["apiVersion"]
                    .as_str()
                    .unwrap()
                    .starts_with("monitoring.coreos.com/")
            })
            .count();
        for version in ["1.25.0", "1.37.0"] {
            let out = Command::new(&validator)
                .args(["--strict", "--kubernetes-version", version])
                .arg(&file)
                .output()
                .expect("run kubernetes-validate");
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{args:?} does not pass the Kubernetes {version} schemas:\n{text}"
            );
            assert_eq!(
                text.matches(" passed for resource ").count(),
                expected,
                "{args:?}: kubernetes-validate {version} did not validate every object:\n{text}"
            );
        }
    }
}

#[test]
fn every_object_is_labelled_and_in_the_release_namespace() {
    for r in all_renderings() {
        for d in &r.docs {
            let what = format!("{:?}: {} {}", r.args, d["kind"], d["metadata"]["name"]);
            assert_eq!(d["metadata"]["namespace"], NAMESPACE, "{what}: namespace");
            let labels = &d["metadata"]["labels"];
            assert_eq!(labels["app.kubernetes.io/name"], "outboxd", "{what}");
            assert_eq!(labels["app.kubernetes.io/instance"], RELEASE, "{what}");
            assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm", "{what}");
            assert!(
                labels["helm.sh/chart"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("outboxd-")),
                "{what}: helm.sh/chart"
            );
        }
        let spec = &r.deployment()["spec"];
        assert!(
            selects(&spec["selector"]["matchLabels"], r.pod_labels()),
            "{:?}: the Deployment's selector does not match its pods",
            r.args
        );
    }
}

// ---- the Deployment ------------------------------------------------------------------------

#[test]
fn pods_run_restricted_as_the_images_user() {
    let uid = image_uid();
    for r in all_renderings() {
        let pod = &r.pod()["securityContext"];
        let ctr = &r.container()["securityContext"];
        let field = |k: &str| {
            if ctr[k].is_null() {
                pod[k].clone()
            } else {
                ctr[k].clone()
            }
        };
        let what = format!("{:?}", r.args);
        assert_eq!(field("runAsNonRoot"), true, "{what}: runAsNonRoot");
        assert_eq!(
            field("runAsUser"),
            uid,
            "{what}: runAsUser is the image's USER"
        );
        assert_eq!(
            ctr["allowPrivilegeEscalation"], false,
            "{what}: allowPrivilegeEscalation"
        );
        assert_eq!(
            ctr["readOnlyRootFilesystem"], true,
            "{what}: readOnlyRootFilesystem"
        );
        assert_eq!(
            ctr["capabilities"]["drop"],
            json!(["ALL"]),
            "{what}: drop all capabilities"
        );
        assert!(
            ctr["capabilities"]["add"].is_null(),
            "{what}: adds no capability"
        );
        assert_eq!(
            field("seccompProfile")["type"],
            "RuntimeDefault",
            "{what}: seccomp"
        );
        assert_ne!(ctr["privileged"], true, "{what}: privileged");
        assert_eq!(
            r.pod()["automountServiceAccountToken"],
            false,
            "{what}: outboxd needs no API token"
        );
        // Nothing but the configuration (and the extra volumes asked for) is mounted.
        let volumes = r.pod()["volumes"].as_array().unwrap();
        assert!(
            volumes
                .iter()
                .all(|v| v["configMap"].is_object() || v["secret"].is_object()),
            "{what}: a writable volume is mounted ({volumes:?}); outboxd writes no file"
        );
    }
}

#[test]
fn probes_hit_the_health_endpoints_on_the_port_outboxd_listens_on() {
    for r in all_renderings() {
        let what = format!("{:?}", r.args);
        let http = r.container_port(&json!("http"));
        // OUTBOXD_HTTP_ADDR wins over the file's http.addr (and sets it for a connector JSON).
        let addr = r.env_value("OUTBOXD_HTTP_ADDR").expect("OUTBOXD_HTTP_ADDR");
        assert_eq!(listen_port(&addr), http, "{what}: OUTBOXD_HTTP_ADDR");
        let replicas = r.deployment()["spec"]["replicas"].as_u64().unwrap();
        let ready_path = if replicas > 1 { "/healthz" } else { "/readyz" };
        for (probe, path) in [
            ("livenessProbe", "/healthz"),
            ("readinessProbe", ready_path),
        ] {
            let get = &r.container()[probe]["httpGet"];
            assert_eq!(get["path"], path, "{what}: {probe} path");
            assert_eq!(r.container_port(&get["port"]), http, "{what}: {probe} port");
        }
        // /healthz turns 503 after 60 s without a round of the main loop: the liveness probe may
        // not kill a pod sooner than that.
        let live = &r.container()["livenessProbe"];
        let window =
            live["periodSeconds"].as_u64().unwrap() * live["failureThreshold"].as_u64().unwrap();
        assert!(window >= 60, "{what}: liveness gives up after {window} s");
        if r.has("ConfigMap") && r.env_value("OUTBOXD_CONFIG").unwrap().ends_with(".toml") {
            let (config, _) = valid_config(&r.config_toml(), &what);
            assert_eq!(
                listen_port(config.http.addr.as_deref().expect("http.addr")),
                http,
                "{what}: the ConfigMap's http.addr"
            );
        }
    }
    let r = render(&["--set", "containerPorts.http=9100,service.ports.http=9100"]);
    assert_eq!(r.container_port(&json!("http")), 9100);
    assert_eq!(r.env_value("OUTBOXD_HTTP_ADDR").unwrap(), "0.0.0.0:9100");
    let (config, _) = valid_config(&r.config_toml(), "containerPorts.http=9100");
    assert_eq!(config.http.addr.as_deref(), Some("0.0.0.0:9100"));
    let r = render(&[
        "--set",
        "readinessProbe.enabled=false,livenessProbe.enabled=false",
    ]);
    assert!(r.container()["readinessProbe"].is_null() && r.container()["livenessProbe"].is_null());
}

#[test]
fn one_replica_recreates_two_roll_with_a_standby() {
    let r = render(&[]);
    let spec = &r.deployment()["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "Recreate"}),
        "one replica: Recreate, the old pod releases the slot first"
    );
    assert!(!r.has("PodDisruptionBudget"), "no PDB by default");

    let r = render(&["-f", "charts/outboxd/ci/active-passive-values.yaml"]);
    let spec = &r.deployment()["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}),
        "two replicas: one pod at a time, never a third"
    );
    assert_eq!(
        r.container()["readinessProbe"]["httpGet"]["path"],
        "/healthz",
        "a standby never gets ready on /readyz and would stall the rollout"
    );
    let pdb = r.one("PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert!(pdb["spec"]["minAvailable"].is_null());
    assert!(selects(
        &pdb["spec"]["selector"]["matchLabels"],
        r.pod_labels()
    ));
    let anti = &r.pod()["affinity"]["podAntiAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(anti["topologyKey"], "kubernetes.io/hostname");
    assert!(selects(
        &anti["labelSelector"]["matchLabels"],
        r.pod_labels()
    ));
    assert!(read("docs/operations.md").contains("active/passive"));

    // The soft preset by default; a full affinity replaces it.
    let r = render(&[]);
    assert!(r.pod()["affinity"]["podAntiAffinity"]
        ["preferredDuringSchedulingIgnoredDuringExecution"]
        .is_array());
    let r = render(&["--set", "affinity.nodeAffinity.x=y"]);
    assert_eq!(r.pod()["affinity"], json!({"nodeAffinity": {"x": "y"}}));
    let r = render(&["--set", "pdb.create=true,pdb.minAvailable=1"]);
    let pdb = &r.one("PodDisruptionBudget")["spec"];
    assert_eq!(
        (pdb["minAvailable"].clone(), pdb["maxUnavailable"].clone()),
        (json!(1), Value::Null)
    );

    // One replica with a surging RollingUpdate deadlocks: refused.
    let err = render_error(&["--set", "updateStrategy.type=RollingUpdate"]);
    assert!(err.contains("deadlocks"), "{err}");
    let r = render(&[
        "--set",
        "updateStrategy.type=RollingUpdate,updateStrategy.rollingUpdate.maxSurge=0,updateStrategy.rollingUpdate.maxUnavailable=1",
    ]);
    assert_eq!(r.deployment()["spec"]["strategy"]["type"], "RollingUpdate");
}

#[test]
fn grace_period_is_computed_from_the_shutdown_timeout() {
    // The default: outboxd's 30 s, plus the 15 s margin.
    let r = render(&[]);
    let (config, _) = valid_config(&r.config_toml(), "the default outboxd.toml");
    assert_eq!(config.pipeline.shutdown_timeout_ms, 30_000);
    assert_eq!(r.grace_seconds(), 45);
    for r in all_renderings() {
        let timeout_ms = if r.env_value("OUTBOXD_CONFIG").unwrap().ends_with(".toml") {
            valid_config(&r.config_toml(), "outboxd.toml")
                .0
                .pipeline
                .shutdown_timeout_ms
        } else {
            30_000 // a connector JSON has no such key: outboxd's default
        };
        assert!(
            r.grace_seconds() * 1000 > timeout_ms,
            "{:?}: terminationGracePeriodSeconds {} is not above shutdown_timeout_ms {timeout_ms}",
            r.args,
            r.grace_seconds()
        );
    }
    let r = render(&["--set", "config.pipeline.shutdown_timeout_ms=90500"]);
    assert_eq!(r.grace_seconds(), 91 + 15, "rounded up, plus the margin");
    let r = render(&[
        "--set",
        "config.pipeline.shutdown_timeout_ms=60000,terminationGracePeriodMarginSeconds=5",
    ]);
    assert_eq!(r.grace_seconds(), 65);
    let r = render(&["--set", "terminationGracePeriodSeconds=120"]);
    assert_eq!(r.grace_seconds(), 120);
    let err = render_error(&["--set", "terminationGracePeriodSeconds=30"]);
    assert!(
        err.contains("must be longer than pipeline.shutdown_timeout_ms (30000 ms)"),
        "{err}"
    );
    // A TOML string as `config`: the key is read from it.
    let toml = "[source]\nurl = \"postgres://outboxd@db:5432/app\"\n[kafka]\n\"bootstrap.servers\" = \"k:9092\"\n[pipeline]\nshutdown_timeout_ms = 120_000\n[http]\naddr = \"0.0.0.0:8080\"\n";
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        serde_json::to_string(&json!({ "config": toml })).unwrap(),
    )
    .unwrap();
    let r = render(&["-f", values.to_str().unwrap()]);
    assert_eq!(r.config_toml(), toml, "a TOML string is used as it is");
    valid_config(&r.config_toml(), "the TOML string");
    assert_eq!(r.grace_seconds(), 135);
    // An existing ConfigMap: outboxd's default assumed.
    let r = render(&["--set", "existingConfigMap=mine"]);
    assert_eq!(r.grace_seconds(), 45);
}

#[test]
fn the_default_config_is_valid_for_outboxd() {
    let r = render(&[]);
    assert_eq!(
        r.config_file(),
        (FULLNAME.to_string(), "outboxd.toml".into())
    );
    assert!(r.env("OUTBOXD_WORKER_CONFIG").is_none());
    let text = r.config_toml();
    let (config, plan) = valid_config(&text, "the default outboxd.toml");
    assert_eq!(config.source.slot, "outboxd");
    assert_eq!(plan.tables.len(), 1);
    assert_eq!(r.env_value("OUTBOXD_LOG_FORMAT").as_deref(), Some("json"));
    assert_eq!(r.env_value("RUST_LOG").as_deref(), Some("info"));
    assert_eq!(r.container()["args"], json!(["run"]));
    // The memory figures are docs/operations.md's (Sizing), as for docker/kubernetes.
    let res = &r.container()["resources"];
    let sizing = read("docs/operations.md");
    let sizing = sizing
        .split("\n## ")
        .find(|s| s.starts_with("Sizing"))
        .expect("a ## Sizing section in docs/operations.md");
    for q in [
        &res["requests"]["memory"],
        &res["limits"]["memory"],
        &res["requests"]["cpu"],
    ] {
        let q = q.as_str().expect("a resource figure");
        assert!(
            sizing.contains(&format!("`{q}`")),
            "docs/operations.md's Sizing does not give {q}, a figure of the chart's resources"
        );
    }
    // No password given: no PGPASSWORD, no Secret.
    assert!(r.env("PGPASSWORD").is_none());
    assert!(!r.has("Secret"));
}

#[test]
fn values_render_to_the_toml_outboxd_reads() {
    // Every kind of value the renderer writes, back through the TOML parser.
    let config = json!({
        "source": {
            "url": "postgres://outboxd@db:5432/app?sslmode=verify-full&sslrootcert=/ca.pem",
            "tables": ["public.outbox", "billing.outbox"],
            "status_interval_ms": 500,
            "create_slot": false,
            "heartbeat_action_query": "INSERT INTO hb VALUES ('x', \"y\") -- it's",
            "heartbeat_interval_ms": 10000,
        },
        "kafka": { "bootstrap.servers": "k:9092", "linger.ms": 5, "batch.num.messages": 10000 },
        "router": { "route.topic.replacement": "outbox.${routedByValue}", "table.expand.json.payload": true },
        "errors": { "errors.tolerance": "all", "errors.deadletterqueue.topic.name": "dlq" },
        "pipeline": { "max_in_flight_bytes": 33554432u64, "shutdown_timeout_ms": 45000 },
    });
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        serde_json::to_string(&json!({ "config": config })).unwrap(),
    )
    .unwrap();
    let r = render(&[
        "-f",
        values.to_str().unwrap(),
        "--set",
        "config.source.slot=null",
    ]);
    let text = r.config_toml();
    let parsed: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{text}\n{e}"));
    let parsed = serde_json::to_value(parsed).unwrap();
    for (section, keys) in config.as_object().unwrap() {
        for (k, v) in keys.as_object().unwrap() {
            assert_eq!(&parsed[section][k], v, "{section}.{k} in\n{text}");
        }
    }
    assert!(
        parsed["source"].get("slot").is_none(),
        "a default removed with null is left out:\n{text}"
    );
    assert_eq!(
        parsed["source"]["publication"], "outboxd",
        "defaults merge in"
    );
    assert_eq!(parsed["http"]["addr"], "0.0.0.0:8080");
    let (cfg, plan) = valid_config(&text, "the rendered outboxd.toml");
    assert_eq!(cfg.pipeline.shutdown_timeout_ms, 45_000);
    assert_eq!(plan.tables.len(), 2);
    assert_eq!(r.grace_seconds(), 60);
    // A value TOML cannot hold, and a password in the URL, are refused.
    let err = render_error(&[
        "--set",
        "config.source.url=postgres://outboxd:secret@db/app",
    ]);
    assert!(err.contains("carries a password"), "{err}");
    let err = render_error(&["--set", "config.source.url=null"]);
    assert!(err.contains("config.source.url is required"), "{err}");
}

// ---- passwords -----------------------------------------------------------------------------

#[test]
fn passwords_come_from_existing_secrets() {
    let r = render(&["-f", "charts/outboxd/ci/existing-secret-values.yaml"]);
    assert_eq!(
        r.env_secret("PGPASSWORD"),
        Some(("app-db-outboxd".into(), "pg-password".into()))
    );
    assert_eq!(
        r.env_secret("KAFKA_SASL_PASSWORD"),
        Some(("kafka-outboxd".into(), "sasl-password".into()))
    );
    assert!(
        !r.has("Secret"),
        "with existing Secrets the chart creates none"
    );
    for var in ["PGPASSWORD", "KAFKA_SASL_PASSWORD"] {
        assert!(
            r.env(var).unwrap()["value"].is_null(),
            "{var} is no literal"
        );
    }
    // The Kafka password reaches librdkafka through the reference the chart adds.
    let text = r.config_toml();
    valid_config(&text, "existing-secret-values.yaml's outboxd.toml");
    let reference = toml_key(&text, "kafka", "sasl.password").expect("kafka.\"sasl.password\"");
    let resolved = outboxd::secrets::resolve_with(
        "kafka.\"sasl.password\"",
        &reference,
        &|name| (name == "KAFKA_SASL_PASSWORD").then(|| "from-the-secret".to_string()),
        &|_| Err(std::io::Error::other("no file")),
    )
    .expect("the reference resolves from KAFKA_SASL_PASSWORD");
    assert_eq!(resolved, "from-the-secret");
    assert!(
        !text.contains("password\" = \"from"),
        "no password in the ConfigMap"
    );
    // Its CA mount is there.
    assert!(r.container()["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mountPath"] == "/etc/outboxd-ca"));
    // A sasl.password of the user's own is kept.
    let r = render(&[
        "--set",
        "kafka.sasl.existingSecret=k,config.kafka.sasl\\.password=${file:/run/secrets/kafka}",
    ]);
    assert_eq!(
        toml_key(&r.config_toml(), "kafka", "sasl.password").as_deref(),
        Some("${file:/run/secrets/kafka}")
    );
}

/// Standard base64 (with padding), as a Secret's `data` holds it.
fn base64_decode(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET
            .iter()
            .position(|&a| a == c)
            .unwrap_or_else(|| panic!("{text:?} is not base64")) as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8(out).expect("UTF-8")
}

#[test]
fn passwords_given_as_values_go_into_the_charts_secret() {
    let r = render(&[
        "--set",
        "postgresql.password=pg-s3cret,kafka.sasl.password=kafka-s3cret",
    ]);
    let secret = r.one("Secret");
    assert_eq!(secret["metadata"]["name"], FULLNAME);
    let decode = |key: &str| {
        let b64 = secret["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("the Secret has no {key}"));
        base64_decode(b64)
    };
    assert_eq!(decode("postgresql-password"), "pg-s3cret");
    assert_eq!(decode("kafka-sasl-password"), "kafka-s3cret");
    assert_eq!(
        r.env_secret("PGPASSWORD"),
        Some((FULLNAME.into(), "postgresql-password".into()))
    );
    assert_eq!(
        r.env_secret("KAFKA_SASL_PASSWORD"),
        Some((FULLNAME.into(), "kafka-sasl-password".into()))
    );
    let annotations = &r.deployment()["spec"]["template"]["metadata"]["annotations"];
    assert!(
        annotations["checksum/secret"].is_string(),
        "a changed password restarts the pods"
    );
    // No password in the ConfigMap or anywhere but the Secret.
    for d in r.docs.iter().filter(|d| d["kind"] != "Secret") {
        let text = d.to_string();
        assert!(!text.contains("s3cret"), "{} holds a password", d["kind"]);
    }
    // existingSecret wins over the value.
    let r = render(&[
        "--set",
        "postgresql.password=x,postgresql.existingSecret=mine",
    ]);
    assert_eq!(
        r.env_secret("PGPASSWORD"),
        Some(("mine".into(), "password".into()))
    );
    assert!(!r.has("Secret"));
}

#[test]
fn config_changes_roll_the_pods() {
    let checksum = |args: &[&str]| {
        render(args).deployment()["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            .as_str()
            .expect("checksum/config")
            .to_string()
    };
    let a = checksum(&[]);
    assert_eq!(a, checksum(&[]), "the same values, the same checksum");
    assert_ne!(a, checksum(&["--set", "config.source.slot=other"]));
    assert_ne!(a, checksum(&["--set", "config.kafka.linger\\.ms=20"]));
    // A ConfigMap of the user's is not the chart's to watch.
    let r = render(&["--set", "existingConfigMap=mine"]);
    assert!(
        r.deployment()["spec"]["template"]["metadata"]["annotations"]["checksum/config"].is_null()
    );
}

// ---- the other configuration modes ---------------------------------------------------------

#[test]
fn an_existing_configmap_is_mounted_as_it_is() {
    let r = render(&[
        "--set",
        "existingConfigMap=my-config,existingConfigMapKey=relay.toml",
    ]);
    assert!(
        !r.has("ConfigMap"),
        "the chart renders no ConfigMap of its own"
    );
    assert_eq!(r.config_file(), ("my-config".into(), "relay.toml".into()));
    let err = render_error(&["--set", "existingConfigMap=a,connector.enabled=true"]);
    assert!(err.contains("not both"), "{err}");
}

#[test]
fn connector_mode_runs_the_debezium_connector_json() {
    let r = render(&["-f", "charts/outboxd/ci/connector-values.yaml"]);
    let (cm, key) = r.config_file();
    assert_eq!((cm.as_str(), key.as_str()), (FULLNAME, "connector.json"));
    let (wcm, wkey) = r.mounted_file("OUTBOXD_WORKER_CONFIG");
    assert_eq!(
        (wcm.as_str(), wkey.as_str()),
        (FULLNAME, "worker.properties")
    );
    let connector = r.configmap_data(&cm, &key);
    let worker = r.configmap_data(&wcm, &wkey);
    let json: Value = serde_json::from_str(&connector).expect("connector.json is JSON");
    assert_eq!(json["name"], "outbox-connector");

    // outboxd maps it as `run` would (the same import, printed as TOML), with the passwords
    // from the environment the chart sets.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("connector.json"), &connector).unwrap();
    std::fs::write(dir.path().join("worker.properties"), &worker).unwrap();
    assert!(r.env_secret("PGPASSWORD").is_some());
    assert!(r.env_secret("KAFKA_SASL_PASSWORD").is_some());
    let out = Command::new(env!("CARGO_BIN_EXE_outboxd"))
        .arg("import-debezium")
        .arg(dir.path().join("connector.json"))
        .arg("--worker-config")
        .arg(dir.path().join("worker.properties"))
        .env("PGPASSWORD", "pg")
        .env("KAFKA_SASL_PASSWORD", "kafka")
        .output()
        .expect("run outboxd import-debezium");
    let toml = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "outboxd refuses the chart's connector JSON:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (config, plan) = valid_config(&toml, "the imported connector");
    assert_eq!(config.source.slot, "debezium");
    assert_eq!(plan.tables.len(), 1);
    assert!(
        Config::string_map("kafka", &config.kafka).unwrap()["bootstrap.servers"]
            .contains("kafka-1.kafka:9092"),
        "the worker file's bootstrap.servers"
    );

    // A JSON string is used as it is; a connector ConfigMap of the user's is mounted.
    let raw = r#"{"name": "x", "config": {"connector.class": "io.debezium.connector.postgresql.PostgresConnector"}}"#;
    let values = dir.path().join("raw.yaml");
    std::fs::write(
        &values,
        serde_json::to_string(&json!({"connector": {"enabled": true, "json": raw}, "kafka": {"bootstrapServers": "k:9092"}})).unwrap(),
    )
    .unwrap();
    let r = render(&["-f", values.to_str().unwrap()]);
    assert_eq!(r.configmap_data(FULLNAME, "connector.json").trim_end(), raw);
    assert!(
        r.env("OUTBOXD_WORKER_CONFIG").is_none(),
        "no worker file given"
    );
    assert_eq!(
        r.env_value("KAFKA_BOOTSTRAP_SERVERS").as_deref(),
        Some("k:9092")
    );
    let r = render(&[
        "--set",
        "connector.enabled=true,connector.existingConfigMap=dbz,connector.existingConfigMapWorkerKey=connect.properties",
    ]);
    assert!(!r.has("ConfigMap"));
    assert_eq!(r.config_file(), ("dbz".into(), "connector.json".into()));
    assert_eq!(
        r.mounted_file("OUTBOXD_WORKER_CONFIG"),
        ("dbz".into(), "connect.properties".into())
    );
    // Without bootstrap servers anywhere, outboxd would stop at start: refused at once.
    let err = render_error(&["--set", "connector.enabled=true,connector.json.config.a=b"]);
    assert!(err.contains("needs the Kafka bootstrap servers"), "{err}");
    let err = render_error(&["--set", "connector.enabled=true"]);
    assert!(err.contains("connector.json"), "{err}");
}

// ---- Service, ServiceMonitor, PrometheusRule -----------------------------------------------

#[test]
fn service_and_servicemonitor_reach_every_pod() {
    let r = render(&["-f", "charts/outboxd/ci/monitoring-values.yaml"]);
    let svc = r.one("Service");
    assert!(selects(&svc["spec"]["selector"], r.pod_labels()));
    assert_eq!(
        svc["spec"]["publishNotReadyAddresses"], true,
        "a standby (never ready on /readyz) and an unready pod are scraped too"
    );
    let port = &svc["spec"]["ports"][0];
    assert_eq!(port["name"], "http");
    assert_eq!(
        r.container_port(&port["targetPort"]),
        r.container_port(&json!("http"))
    );
    let sm = r.one("ServiceMonitor");
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["metadata"]["labels"]["release"], "kube-prometheus-stack");
    let svc_labels = svc["metadata"]["labels"].as_object().unwrap();
    assert!(
        selects(&sm["spec"]["selector"]["matchLabels"], svc_labels),
        "the ServiceMonitor does not select the Service"
    );
    assert_eq!(
        sm["spec"]["namespaceSelector"]["matchNames"],
        json!([NAMESPACE])
    );
    let ep = &sm["spec"]["endpoints"][0];
    assert_eq!(ep["port"], port["name"], "the Service's port, by name");
    assert_eq!(ep["path"], "/metrics");
    assert_eq!(ep["interval"], "30s");
    // Off by default.
    let r = render(&[]);
    assert!(!r.has("ServiceMonitor") && !r.has("PrometheusRule"));
}

#[test]
fn prometheus_rule_alerts_on_metrics_outboxd_exports() {
    let r = render(&["-f", "charts/outboxd/ci/monitoring-values.yaml"]);
    let rule = r.one("PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    let rules = rule["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("one group of rules");
    let alerts: BTreeMap<&str, &Value> = rules
        .iter()
        .map(|r| (r["alert"].as_str().expect("alert name"), r))
        .collect();
    let rendered = catalog::rendered_metrics();
    let documented = catalog::documented_metrics();
    let target_labels = [
        "namespace",
        "job",
        "instance",
        "pod",
        "service",
        "container",
    ];
    let name_re = regex::Regex::new(r"\boutboxd_[a-z0-9_]*[a-z0-9]").unwrap();
    let by_re = regex::Regex::new(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)").unwrap();
    let selector_re = regex::Regex::new(r"(outboxd_[a-z0-9_]+)\{([^}]*)\}").unwrap();
    let mut used = BTreeSet::new();
    for (alert, rule) in &alerts {
        let expr = rule["expr"].as_str().expect("expr");
        assert!(rule["labels"]["severity"].is_string(), "{alert}: severity");
        assert!(
            rule["annotations"]["summary"].is_string(),
            "{alert}: summary"
        );
        // Balanced brackets, quotes in pairs: a PromQL typo would only show in Prometheus.
        for (open, close) in [('(', ')'), ('{', '}'), ('[', ']')] {
            assert_eq!(
                expr.matches(open).count(),
                expr.matches(close).count(),
                "{alert}: unbalanced {open}{close} in {expr}"
            );
        }
        assert_eq!(
            expr.matches('"').count() % 2,
            0,
            "{alert}: quotes in {expr}"
        );
        let mut families = BTreeSet::new();
        for m in name_re.find_iter(expr) {
            let name = m.as_str();
            assert!(
                rendered.contains_key(name),
                "{alert} uses {name}, which Metrics::render does not export"
            );
            assert!(
                documented.contains(name),
                "{alert} uses {name}, which docs/metrics.md does not list"
            );
            families.insert(name.to_string());
        }
        assert!(
            !families.is_empty(),
            "{alert} uses no outboxd metric: {expr}"
        );
        for by in by_re.captures_iter(expr) {
            for l in by[1].split(',').map(str::trim).filter(|l| !l.is_empty()) {
                assert!(
                    target_labels.contains(&l)
                        || families.iter().any(|f| rendered[f].1.contains(l)),
                    "{alert}: grouping by {l}, a label none of {families:?} has"
                );
            }
        }
        // Every series selector is scoped to this release, as the ServiceMonitor labels it
        // (job = the Service's name).
        for sel in selector_re.captures_iter(expr) {
            assert_eq!(
                sel[2].trim(),
                format!("namespace=\"{NAMESPACE}\", job=\"{FULLNAME}\""),
                "{alert}: the selector of {}",
                &sel[1]
            );
        }
        used.extend(families);
    }
    // The three the issue asks for, with the thresholds of the values.
    let expr = |alert: &str| {
        alerts
            .get(alert)
            .unwrap_or_else(|| panic!("no alert {alert}"))["expr"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let lag = expr("OutboxdSlotLagHigh");
    assert!(
        lag.contains("outboxd_slot_lag_bytes") && lag.ends_with("> 5000000000"),
        "{lag}"
    );
    assert_eq!(alerts["OutboxdSlotLagHigh"]["for"], "15m");
    let confirm = expr("OutboxdNoConfirmation");
    assert!(
        confirm.contains("outboxd_last_confirmation_age_seconds")
            && confirm.contains(">= 0) > 600"),
        "the standby's -1 excluded, 10 minutes: {confirm}"
    );
    let dlq = expr("OutboxdEventsDeadLettered");
    assert!(
        dlq.contains("increase(outboxd_events_dead_lettered_total") && dlq.ends_with("> 0"),
        "{dlq}"
    );
    for m in [
        "outboxd_slot_lag_bytes",
        "outboxd_last_confirmation_age_seconds",
        "outboxd_events_dead_lettered_total",
    ] {
        assert!(used.contains(m), "no alert on {m}");
    }

    // Each alert can be turned off; more rules can be added; the selector can be replaced.
    let r = render(&[
        "--set",
        "metrics.prometheusRule.enabled=true,metrics.prometheusRule.rules.reconnects.enabled=false",
        "--set",
        "metrics.prometheusRule.selector=job=\"custom\"",
        "--set-json",
        r#"metrics.prometheusRule.additionalRules=[{"alert":"Mine","expr":"up == 0"}]"#,
    ]);
    let rules = r.one("PrometheusRule")["spec"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .clone();
    let names: Vec<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    assert!(!names.contains(&"OutboxdReconnecting"), "{names:?}");
    assert_eq!(names.last(), Some(&"Mine"));
    assert!(rules[0]["expr"]
        .as_str()
        .unwrap()
        .contains("outboxd_slot_lag_bytes{job=\"custom\"}"));
}

#[test]
fn notes_tell_how_to_check_and_what_was_assumed() {
    let notes = |args: &[&str]| {
        let out = helm()
            .args(["install", "outboxd"])
            .arg(chart())
            .args(["--dry-run=client", "--namespace", NAMESPACE])
            .args(args)
            .output()
            .expect("run helm install --dry-run=client");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "helm install --dry-run {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.split_once("\nNOTES:\n")
            .expect("NOTES rendered")
            .1
            .to_string()
    };
    let n = notes(&[]);
    assert!(
        n.contains(&format!(
            "kubectl -n {NAMESPACE} exec deploy/outboxd -- outboxd check"
        )),
        "{n}"
    );
    assert!(
        n.contains("strategy Recreate") && n.contains("terminationGracePeriodSeconds is 45 s"),
        "{n}"
    );
    assert!(n.contains("WARNING: no Postgres password"), "{n}");
    let n = notes(&["-f", "charts/outboxd/ci/active-passive-values.yaml"]);
    assert!(
        n.contains("active/passive") && n.contains("Readiness is on /healthz"),
        "{n}"
    );
    assert!(!n.contains("WARNING"), "{n}");
    let n = notes(&["-f", "charts/outboxd/ci/connector-values.yaml"]);
    assert!(
        n.contains("connector JSON") && n.contains("assumed outboxd's default"),
        "{n}"
    );
    let n = notes(&["-f", "charts/outboxd/ci/monitoring-values.yaml"]);
    assert!(
        n.contains("ServiceMonitor outboxd") && n.contains("PrometheusRule outboxd"),
        "{n}"
    );
}

#[test]
fn a_prometheus_rule_without_rules_is_refused() {
    let off: Vec<String> = [
        "slotLag",
        "noConfirmation",
        "deadLettered",
        "eventsFailed",
        "reconnects",
    ]
    .iter()
    .map(|r| format!("metrics.prometheusRule.rules.{r}.enabled=false"))
    .collect();
    let set = format!("metrics.prometheusRule.enabled=true,{}", off.join(","));
    let err = render_error(&["--set", &set]);
    assert!(err.contains("nothing to alert on"), "{err}");
    let r = render(&[
        "--set",
        &set,
        "--set-json",
        r#"metrics.prometheusRule.additionalRules=[{"alert":"A","expr":"up == 0"}]"#,
    ]);
    assert_eq!(
        r.one("PrometheusRule")["spec"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

// ---- values.yaml, its schema and its README ------------------------------------------------

/// The values of values.yaml as dotted paths, down to the leaves (an empty map or list, a scalar,
/// a list). `config` and `connector.json` are free-form (outboxd's and Debezium's own keys) and
/// count as leaves.
fn value_paths() -> Vec<String> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m)
                if !m.is_empty() && prefix != "config" && prefix != "connector.json" =>
            {
                for (k, v) in m {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let values = &parse_docs(&read("charts/outboxd/values.yaml"), "values.yaml")[0];
    let mut out = Vec::new();
    walk("", values, &mut out);
    out
}

#[test]
fn the_readme_lists_every_value() {
    let readme = read("charts/outboxd/README.md");
    let readme = readme
        .split_once("\n## Values\n")
        .expect("a ## Values section in the chart's README")
        .1
        .to_string();
    let listed: BTreeSet<String> = regex::Regex::new(r"(?m)^\| `([A-Za-z0-9_.\-]+)` \|")
        .unwrap()
        .captures_iter(&readme)
        .map(|c| c[1].to_string())
        .collect();
    let paths: BTreeSet<String> = value_paths().into_iter().collect();
    assert!(paths.len() > 80, "values.yaml: {} values?", paths.len());
    let missing: Vec<&String> = paths.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "charts/outboxd/README.md does not list {missing:?}"
    );
    let unknown: Vec<&String> = listed.difference(&paths).collect();
    assert!(
        unknown.is_empty(),
        "charts/outboxd/README.md lists {unknown:?}, which values.yaml lacks"
    );
    // The defaults it shows are values.yaml's.
    let values = &parse_docs(&read("charts/outboxd/values.yaml"), "values.yaml")[0];
    let row = regex::Regex::new(r"(?m)^\| `([A-Za-z0-9_.\-]+)` \| `([^`]*)` \|").unwrap();
    let mut checked = 0;
    for c in row.captures_iter(&readme) {
        let mut v = values;
        for part in c[1].split('.') {
            v = &v[part];
        }
        if v.is_object() && c[1].starts_with("config") {
            continue;
        }
        let shown: Value =
            serde_json::from_str(&c[2]).unwrap_or_else(|_| Value::String(c[2].to_string()));
        assert_eq!(
            &shown, v,
            "README: the default of {} is {}, values.yaml says {v}",
            &c[1], &c[2]
        );
        checked += 1;
    }
    assert!(
        checked > 80,
        "only {checked} defaults in the README's tables"
    );
}

#[test]
fn the_schema_covers_every_value_and_is_enforced() {
    let schema: Value = serde_json::from_str(&read("charts/outboxd/values.schema.json"))
        .expect("values.schema.json is JSON");
    for path in value_paths() {
        let mut s = &schema;
        for part in path.split('.') {
            s = &s["properties"][part];
            assert!(
                s.is_object(),
                "values.schema.json has no entry for {path} (at {part})"
            );
        }
    }
    for (set, what) in [
        ("replicaCount=two", "replicaCount"),
        ("logFormat=xml", "logFormat"),
        ("replicas=2", "replicas"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
        ("containerPorts.http=70000", "http"),
        ("config.sources.url=x", "sources"),
        ("readinessProbe.path=/metrics", "path"),
    ] {
        let err = render_error(&["--set", set]);
        assert!(
            err.contains("schema") && err.contains(what),
            "--set {set}: not refused by the schema:\n{err}"
        );
    }
}

// ---- the chart beside the other deployment files -------------------------------------------

#[test]
fn the_docs_describe_the_chart() {
    let gs = read("docs/getting-started.md");
    let helm = gs
        .split("\n## ")
        .find(|s| s.starts_with("Helm"))
        .expect("a ## Helm section in docs/getting-started.md");
    for needle in [
        "helm install",
        "charts/outboxd",
        "existingSecret",
        "replicaCount",
        "connector.enabled",
        "serviceMonitor",
        "prometheusRule",
    ] {
        assert!(
            helm.contains(needle),
            "docs/getting-started.md's Helm section lacks {needle}"
        );
    }
    // Its example values file renders, and outboxd takes the configuration it makes.
    let example = helm
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a yaml block in the Helm section");
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("my-values.yaml");
    let example: String = example
        .lines()
        .map(|l| l.strip_prefix("   ").unwrap_or(l).to_string() + "\n")
        .collect();
    std::fs::write(&values, example).unwrap();
    let r = render(&["-f", values.to_str().unwrap()]);
    valid_config(&r.config_toml(), "docs/getting-started.md's values file");
    assert_eq!(
        toml_key(&r.config_toml(), "kafka", "sasl.password").as_deref(),
        Some("${env:KAFKA_SASL_PASSWORD}")
    );
    assert_eq!(
        r.env_secret("PGPASSWORD"),
        Some(("outboxd-postgres".into(), "password".into()))
    );
    assert_eq!(r.grace_seconds(), 45);
    assert!(
        read("README.md").contains("charts/outboxd"),
        "README.md's Layout lists the chart"
    );
    assert!(Path::new(&chart().join("templates/NOTES.txt")).is_file());
}
