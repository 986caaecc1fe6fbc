//! The deployment files under `docker/` checked against each other and against the code, without
//! Docker, Kubernetes, Postgres or a broker.
//!
//! - Every YAML file parses; the Kubernetes manifests are all listed in `kustomization.yaml`.
//! - The Deployment: one instance at a time (Recreate), probes on `/healthz` and `/readyz` at the
//!   port outboxd really listens on, a grace period longer than `pipeline.shutdown_timeout_ms`,
//!   non-root, `PGPASSWORD` from the Secret, resource requests (the figures docs/operations.md
//!   derives), the ConfigMap mounted where `--config` points. The ConfigMap's `outboxd.toml` goes
//!   through the real parser (`Config::from_toml`) and resolver (`Plan::from_config`).
//! - The PodMonitor and the Service select the Deployment's pods and use its named port.
//! - docker-compose.yml: Postgres with `wal_level=logical` and an init script that creates the
//!   outbox table with the columns the router reads; outboxd mounts `docker/outboxd.toml`, which
//!   must be valid and must name the compose services and credentials.
//! - The Dockerfile: multi-stage, non-root runtime user.
//! - The Grafana dashboard: Grafana 10 dashboard JSON whose every metric name exists in
//!   docs/metrics.md and in what `Metrics::render` produces (so it cannot drift from the code), with
//!   label names those metrics have, and which charts every documented metric.
//! - `docker compose config -q` when the compose plugin is installed (SKIP otherwise).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

use outboxd::config::Config;
use outboxd::pipeline::Plan;
use outboxd::source::ConnectParams;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// All YAML documents of a file (a file may hold several, separated by `---`), as JSON values.
fn parse_yaml(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Every `*.yaml` / `*.yml` file under `docker/`, recursively, sorted.
fn yaml_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("docker"), &mut out);
    out.sort();
    out
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, found {v}"))
}

/// The Kubernetes manifests in `docker/kubernetes/`, by file name.
struct Manifests {
    docs: Vec<(String, Value)>,
}

impl Manifests {
    fn load() -> Manifests {
        let dir = root().join("docker/kubernetes");
        let mut docs = Vec::new();
        for path in yaml_files() {
            if path.parent() == Some(dir.as_path()) {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                for doc in parse_yaml(&path) {
                    docs.push((name.clone(), doc));
                }
            }
        }
        Manifests { docs }
    }

    /// The one document of `kind`.
    fn one(&self, kind: &str) -> &Value {
        let found: Vec<&Value> = self
            .docs
            .iter()
            .filter(|(_, d)| d["kind"] == kind)
            .map(|(_, d)| d)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "expected exactly one {kind} in docker/kubernetes/"
        );
        found[0]
    }

    fn deployment(&self) -> &Value {
        self.one("Deployment")
    }

    /// The outboxd container of the Deployment.
    fn container(&self) -> &Value {
        let containers = self.deployment()["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("Deployment spec.template.spec.containers");
        containers
            .iter()
            .find(|c| c["name"] == "outboxd")
            .expect("a container named outboxd in the Deployment")
    }

    fn pod_labels(&self) -> &serde_json::Map<String, Value> {
        self.deployment()["spec"]["template"]["metadata"]["labels"]
            .as_object()
            .expect("Deployment spec.template.metadata.labels")
    }

    /// The configuration file the container reads: the ConfigMap key mounted at `--config`.
    fn config_text(&self) -> String {
        let config_path = self.config_path();
        let (dir, file) = config_path
            .rsplit_once('/')
            .expect("--config is an absolute path");
        let mount = self.container()["volumeMounts"]
            .as_array()
            .expect("container volumeMounts")
            .iter()
            .find(|m| m["mountPath"].as_str().map(|p| p.trim_end_matches('/')) == Some(dir))
            .unwrap_or_else(|| panic!("no volumeMount at {dir}, where --config {config_path} is"));
        let volume_name = str_of(&mount["name"], "volumeMount name");
        let volume = self.deployment()["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .expect("pod volumes")
            .iter()
            .find(|v| v["name"] == volume_name)
            .unwrap_or_else(|| panic!("no pod volume named {volume_name}"));
        let cm_name = str_of(
            &volume["configMap"]["name"],
            "the config volume's configMap.name",
        );
        let cm = self.one("ConfigMap");
        assert_eq!(
            cm["metadata"]["name"], cm_name,
            "the config volume mounts ConfigMap {cm_name}, which is not the one in configmap.yaml"
        );
        str_of(
            &cm["data"][file],
            &format!("ConfigMap {cm_name} key {file} (the file --config names)"),
        )
        .to_string()
    }

    /// The `--config` argument (or `OUTBOXD_CONFIG`) of the container.
    fn config_path(&self) -> String {
        arg_value(self.container(), "--config")
            .or_else(|| env_literal(self.container(), "OUTBOXD_CONFIG"))
            .expect("the container passes --config FILE (or sets OUTBOXD_CONFIG)")
    }

    /// The `containerPort` a probe or monitor port (a name or a number) refers to.
    fn resolve_port(&self, port: &Value) -> u64 {
        if let Some(n) = port.as_u64() {
            return n;
        }
        let name = str_of(port, "port");
        self.container()["ports"]
            .as_array()
            .expect("container ports")
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["containerPort"].as_u64())
            .unwrap_or_else(|| panic!("the outboxd container has no port named {name}"))
    }
}

/// The value of `--flag VALUE` or `--flag=VALUE` in a container's `command` + `args`.
fn arg_value(container: &Value, flag: &str) -> Option<String> {
    let words: Vec<&str> = ["command", "args"]
        .iter()
        .filter_map(|k| container[*k].as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    words.iter().enumerate().find_map(|(i, w)| {
        if *w == flag {
            words.get(i + 1).map(|s| s.to_string())
        } else {
            w.strip_prefix(&format!("{flag}=")).map(str::to_string)
        }
    })
}

/// A container environment variable's literal `value`.
fn env_literal(container: &Value, name: &str) -> Option<String> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
        .map(str::to_string)
}

/// Whether every `key: value` of `selector` is among `labels`.
fn selects(selector: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    let Some(sel) = selector.as_object() else {
        return false;
    };
    !sel.is_empty() && sel.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The port of `HOST:PORT`, asserting that HOST accepts connections from outside the pod.
fn listen_port(addr: &str, origin: &str) -> u64 {
    let (host, port) = addr
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{origin} {addr:?}: expected HOST:PORT"));
    assert!(
        matches!(host, "0.0.0.0" | "[::]" | "::" | ""),
        "{origin} {addr:?} listens on {host} only: probes and Prometheus reach the pod from outside, use 0.0.0.0:{port}"
    );
    port.parse()
        .unwrap_or_else(|_| panic!("{origin} {addr:?}: bad port"))
}

/// A Kubernetes memory quantity (`64Mi`, `1G`, `128974848`) in bytes.
fn quantity_bytes(q: &str) -> u64 {
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(n) = q.strip_suffix(suffix) {
            return n
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("bad quantity {q:?}"))
                * factor;
        }
    }
    q.parse()
        .unwrap_or_else(|_| panic!("bad memory quantity {q:?}"))
}

/// A Compose duration (`45s`, `1m30s`, `500ms`) in milliseconds.
fn compose_duration_ms(d: &str) -> u64 {
    let re = regex::Regex::new(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)").unwrap();
    assert!(
        re.replace_all(d, "").is_empty(),
        "cannot read duration {d:?}"
    );
    re.captures_iter(d)
        .map(|c| {
            let n: f64 = c[1].parse().unwrap();
            let ms = match &c[2] {
                "h" => 3_600_000.0,
                "m" => 60_000.0,
                "s" => 1_000.0,
                "ms" => 1.0,
                _ => 0.001,
            };
            (n * ms) as u64
        })
        .sum()
}

/// Parses `text` as outboxd does at start-up: the TOML parser, then the resolver that validates
/// the router, converters and Kafka sections (no I/O).
fn valid_config(text: &str, origin: &str) -> (Config, Plan) {
    let config =
        Config::from_toml(text).unwrap_or_else(|e| panic!("{origin} is refused by outboxd: {e}"));
    let plan = Plan::from_config(&config)
        .unwrap_or_else(|e| panic!("{origin} is refused by outboxd: {e}"));
    (config, plan)
}

/// The Dockerfile's instructions, `(INSTRUCTION, arguments)`, continuation lines joined.
fn dockerfile() -> Vec<(String, String)> {
    let text = read("docker/Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(part) = trimmed.strip_suffix('\\') {
            current.push_str(part);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (inst, args) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        out.push((inst.to_ascii_uppercase(), args.trim().to_string()));
        current.clear();
    }
    out
}

/// `ENV` settings of the Dockerfile's last stage.
fn dockerfile_runtime_env() -> BTreeMap<String, String> {
    let inst = dockerfile();
    let last_from = inst.iter().rposition(|(i, _)| i == "FROM").expect("FROM");
    let mut env = BTreeMap::new();
    for (_, args) in inst[last_from..].iter().filter(|(i, _)| i == "ENV") {
        if args
            .split_whitespace()
            .next()
            .is_some_and(|w| w.contains('='))
        {
            for pair in args.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
                env.insert(k.to_string(), v.trim_matches('"').to_string());
            }
        } else if let Some((k, v)) = args.split_once(char::is_whitespace) {
            env.insert(k.to_string(), v.trim().to_string());
        }
    }
    env
}

// ---- every file ----------------------------------------------------------------------------

#[test]
fn every_yaml_file_under_docker_parses() {
    let files = yaml_files();
    assert!(
        files.len() >= 7,
        "expected docker-compose.yml and the Kubernetes manifests, found {files:?}"
    );
    let k8s = root().join("docker/kubernetes");
    for path in files {
        let docs = parse_yaml(&path);
        assert!(
            !docs.is_empty(),
            "{} holds no YAML document",
            path.display()
        );
        if path.starts_with(&k8s) {
            for doc in &docs {
                for field in ["apiVersion", "kind"] {
                    assert!(
                        doc[field].is_string(),
                        "{}: a document without {field}",
                        path.display()
                    );
                }
                if doc["kind"] != "Kustomization" {
                    assert!(
                        doc["metadata"]["name"].is_string(),
                        "{}: a {} without metadata.name",
                        path.display(),
                        doc["kind"]
                    );
                }
            }
        }
    }
}

#[test]
fn kustomization_lists_every_manifest() {
    let m = Manifests::load();
    let listed: BTreeSet<String> = m.one("Kustomization")["resources"]
        .as_array()
        .expect("kustomization resources")
        .iter()
        .map(|r| str_of(r, "resource").to_string())
        .collect();
    let present: BTreeSet<String> = m
        .docs
        .iter()
        .filter(|(_, d)| d["kind"] != "Kustomization")
        .map(|(f, _)| f.clone())
        .collect();
    assert_eq!(
        listed, present,
        "kustomization.yaml resources must list exactly the manifest files of docker/kubernetes/"
    );
}

// ---- the Deployment ------------------------------------------------------------------------

#[test]
fn deployment_runs_one_instance_at_a_time() {
    let m = Manifests::load();
    let spec = &m.deployment()["spec"];
    let replicas = spec["replicas"].as_u64().unwrap_or(1);
    if replicas == 1 {
        assert_eq!(
            spec["strategy"]["type"], "Recreate",
            "with one replica the strategy must be Recreate: a RollingUpdate starts the new pod while the old one still holds the slot, and the new one is not ready until the old one is gone"
        );
    } else {
        let ops = read("docs/operations.md");
        assert!(
            ops.contains("active/passive"),
            "{replicas} replicas: document how they share the slot (active/passive) in docs/operations.md"
        );
    }
    assert!(
        selects(&spec["selector"]["matchLabels"], m.pod_labels()),
        "the Deployment's selector does not match its pod template's labels"
    );
}

#[test]
fn configmap_config_is_valid_for_outboxd() {
    let m = Manifests::load();
    let text = m.config_text();
    let (config, _plan) = valid_config(&text, "the ConfigMap's outboxd.toml");
    let params = ConnectParams::from_url_with_env(&config.source.url, |_| None)
        .expect("the ConfigMap's source.url");
    assert_eq!(
        params.password, None,
        "the ConfigMap's source.url carries a password: keep it in the Secret (PGPASSWORD)"
    );
    assert!(
        config.http.addr.is_some(),
        "the ConfigMap's outboxd.toml sets no [http] addr: no /metrics, /healthz or /readyz"
    );
}

#[test]
fn probes_hit_the_health_endpoints_on_the_port_outboxd_listens_on() {
    let m = Manifests::load();
    let (config, _) = valid_config(&m.config_text(), "the ConfigMap's outboxd.toml");
    let c = m.container();
    let config_addr = config.http.addr.expect("[http] addr in the ConfigMap");
    let config_port = listen_port(&config_addr, "the ConfigMap's http.addr");
    let http_port = m.resolve_port(&Value::from("http"));
    assert_eq!(
        http_port, config_port,
        "the container port named http must be the ConfigMap's http.addr port"
    );
    // What outboxd really binds: --http-addr / OUTBOXD_HTTP_ADDR win over the file, and the image
    // sets OUTBOXD_HTTP_ADDR.
    let (effective, origin) = if let Some(a) = arg_value(c, "--http-addr") {
        (a, "the container's --http-addr")
    } else if let Some(a) = env_literal(c, "OUTBOXD_HTTP_ADDR") {
        (a, "the container's OUTBOXD_HTTP_ADDR")
    } else if let Some(a) = dockerfile_runtime_env().remove("OUTBOXD_HTTP_ADDR") {
        (a, "the image's ENV OUTBOXD_HTTP_ADDR (docker/Dockerfile)")
    } else {
        (config_addr.clone(), "the ConfigMap's http.addr")
    };
    assert_eq!(
        listen_port(&effective, origin),
        http_port,
        "{origin} ({effective}) overrides the ConfigMap's http.addr with another port than the container port"
    );
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe} must GET {path}");
        assert_eq!(
            m.resolve_port(&get["port"]),
            http_port,
            "{probe} must use the http port"
        );
    }
}

#[test]
fn grace_period_exceeds_the_shutdown_timeout() {
    let m = Manifests::load();
    let (config, _) = valid_config(&m.config_text(), "the ConfigMap's outboxd.toml");
    let grace_s = m.deployment()["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap_or(30);
    assert!(
        grace_s * 1000 > config.pipeline.shutdown_timeout_ms,
        "terminationGracePeriodSeconds ({grace_s} s) must be longer than pipeline.shutdown_timeout_ms ({} ms), or Kubernetes kills outboxd before its final confirmation",
        config.pipeline.shutdown_timeout_ms
    );
}

#[test]
fn runs_as_the_images_non_root_user() {
    let m = Manifests::load();
    let pod = &m.deployment()["spec"]["template"]["spec"]["securityContext"];
    let ctr = &m.container()["securityContext"];
    let field = |k: &str| {
        if ctr[k].is_null() {
            pod[k].clone()
        } else {
            ctr[k].clone()
        }
    };
    assert_eq!(field("runAsNonRoot"), true, "set runAsNonRoot: true");
    let uid = field("runAsUser").as_u64().expect("runAsUser");
    assert_ne!(uid, 0, "runAsUser must not be root");
    assert_eq!(
        ctr["allowPrivilegeEscalation"], false,
        "set allowPrivilegeEscalation: false on the container"
    );
    let image_user = dockerfile()
        .into_iter()
        .rev()
        .find(|(i, _)| i == "USER")
        .map(|(_, a)| a)
        .expect("a USER in docker/Dockerfile");
    let image_uid = image_user.split(':').next().unwrap();
    assert_eq!(
        image_uid,
        uid.to_string(),
        "runAsUser ({uid}) differs from the image's USER ({image_user})"
    );
}

#[test]
fn password_comes_from_the_secret() {
    let m = Manifests::load();
    let secret = m.one("Secret");
    let env = m.container()["env"]
        .as_array()
        .expect("container env")
        .iter()
        .find(|e| e["name"] == "PGPASSWORD")
        .expect("PGPASSWORD in the container's env");
    assert!(
        env["value"].is_null(),
        "PGPASSWORD must not be a literal value"
    );
    let key_ref = &env["valueFrom"]["secretKeyRef"];
    assert_eq!(
        key_ref["name"], secret["metadata"]["name"],
        "PGPASSWORD must come from the Secret in secret.yaml"
    );
    let key = str_of(&key_ref["key"], "secretKeyRef.key");
    assert!(
        !secret["stringData"][key].is_null() || !secret["data"][key].is_null(),
        "the Secret has no key {key}"
    );
}

#[test]
fn resources_are_requested_as_operations_md_sizes_them() {
    let m = Manifests::load();
    let res = &m.container()["resources"];
    for k in ["cpu", "memory"] {
        assert!(
            res["requests"][k].is_string(),
            "resources.requests.{k} is missing"
        );
    }
    let request = str_of(&res["requests"]["memory"], "requests.memory");
    let limit = str_of(&res["limits"]["memory"], "limits.memory (set one)");
    assert!(
        quantity_bytes(request) <= quantity_bytes(limit),
        "memory request {request} above the limit {limit}"
    );
    let ops = read("docs/operations.md");
    let sizing = ops
        .split("\n## ")
        .find(|s| s.starts_with("Sizing"))
        .expect("a ## Sizing section in docs/operations.md");
    for q in [request, limit] {
        assert!(
            sizing.contains(q),
            "docs/operations.md's Sizing section does not mention {q}, the Deployment's memory figure: keep them in step"
        );
    }
}

#[test]
fn podmonitor_scrapes_metrics_of_the_deployments_pods() {
    let m = Manifests::load();
    let pm = m.one("PodMonitor");
    assert!(
        selects(&pm["spec"]["selector"]["matchLabels"], m.pod_labels()),
        "the PodMonitor's selector does not match the Deployment's pod labels"
    );
    let endpoints = pm["spec"]["podMetricsEndpoints"]
        .as_array()
        .expect("podMetricsEndpoints");
    assert!(
        endpoints.iter().any(|e| e["path"] == "/metrics"
            && e["port"].is_string()
            && m.resolve_port(&e["port"]) == m.resolve_port(&Value::from("http"))),
        "the PodMonitor must scrape /metrics on the container's named http port"
    );
}

#[test]
fn service_selects_the_deployments_pods() {
    let m = Manifests::load();
    let svc = m.one("Service");
    assert!(
        selects(&svc["spec"]["selector"], m.pod_labels()),
        "the Service's selector does not match the Deployment's pod labels"
    );
    for p in svc["spec"]["ports"].as_array().expect("Service ports") {
        m.resolve_port(&p["targetPort"]);
    }
}

// ---- docker compose ------------------------------------------------------------------------

/// `docker/docker-compose.yml`'s services.
fn compose_services() -> serde_json::Map<String, Value> {
    let docs = parse_yaml(&root().join("docker/docker-compose.yml"));
    docs[0]["services"]
        .as_object()
        .expect("services in docker-compose.yml")
        .clone()
}

/// A service's `environment`, as a map (list and map forms).
fn compose_env(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .filter_map(|s| s.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A service's `command` as one string (list and string forms).
fn compose_command(service: &Value) -> String {
    match &service["command"] {
        Value::Array(words) => words
            .iter()
            .map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(" "),
        Value::String(s) => s.clone(),
        _ => String::new(),
    }
}

/// The host path (relative to docker/) of the short-form bind mount whose target is `target`.
fn compose_bind_source(service: &Value, target: &str) -> Option<PathBuf> {
    service["volumes"].as_array()?.iter().find_map(|v| {
        let mut parts = v.as_str()?.split(':');
        let (source, t) = (parts.next()?, parts.next()?);
        (t == target).then(|| root().join("docker").join(source))
    })
}

/// `CREATE TABLE` statements of a SQL script: table name (lower case, unquoted) → column names.
fn created_tables(sql: &str) -> BTreeMap<String, Vec<String>> {
    let lower = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
        .to_lowercase();
    let re =
        regex::Regex::new(r#"create\s+table\s+(?:if\s+not\s+exists\s+)?([\w."]+)\s*\("#).unwrap();
    let mut out = BTreeMap::new();
    for cap in re.captures_iter(&lower) {
        let name = cap[1].replace('"', "");
        let start = cap.get(0).unwrap().end();
        let (mut depth, mut end) = (1, start);
        for (i, ch) in lower[start..].char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = start + i;
                break;
            }
        }
        let mut columns = Vec::new();
        let (mut depth, mut item) = (0, String::new());
        for ch in lower[start..end].chars().chain(std::iter::once(',')) {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    let first = item
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .replace('"', "");
                    if ![
                        "primary",
                        "constraint",
                        "unique",
                        "foreign",
                        "check",
                        "exclude",
                        "",
                    ]
                    .contains(&first.as_str())
                    {
                        columns.push(first);
                    }
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(ch);
        }
        out.insert(name, columns);
    }
    out
}

#[test]
fn compose_postgres_has_logical_wal_and_creates_the_outbox_table() {
    let services = compose_services();
    let pg = &services["postgres"];
    let command = compose_command(pg);
    assert!(
        command.contains("wal_level=logical"),
        "the postgres service must run with -c wal_level=logical (command: {command:?})"
    );
    let init = compose_bind_source(pg, "/docker-entrypoint-initdb.d/init.sql")
        .expect("the postgres service mounts an init.sql into /docker-entrypoint-initdb.d/");
    let sql = std::fs::read_to_string(&init)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", init.display()));
    let tables = created_tables(&sql);
    let (_, plan) = valid_config(&read("docker/outboxd.toml"), "docker/outboxd.toml");
    for table in &plan.tables {
        let qualified = table.to_string().to_lowercase();
        let columns = tables
            .get(&qualified)
            .or_else(|| {
                (table.schema == "public")
                    .then(|| tables.get(&table.name.to_lowercase()))
                    .flatten()
            })
            .unwrap_or_else(|| {
                panic!("{} does not create {qualified}, the outbox table docker/outboxd.toml reads (it creates {tables:?})", init.display())
            });
        for col in &plan.setup.required_columns {
            assert!(
                columns.contains(&col.to_lowercase()),
                "{qualified} in {} lacks the column {col} the router reads (it has {columns:?})",
                init.display()
            );
        }
    }
}

#[test]
fn compose_outboxd_mounts_a_valid_config_that_names_the_services() {
    let services = compose_services();
    let o = &services["outboxd"];
    let command = compose_command(o);
    let env = compose_env(o);
    let config_path = command
        .split_whitespace()
        .skip_while(|w| *w != "--config")
        .nth(1)
        .map(str::to_string)
        .or_else(|| env.get("OUTBOXD_CONFIG").cloned())
        .or_else(|| dockerfile_runtime_env().remove("OUTBOXD_CONFIG"))
        .expect("outboxd's config path (--config or OUTBOXD_CONFIG)");
    let source = compose_bind_source(o, &config_path)
        .unwrap_or_else(|| panic!("the outboxd service mounts nothing at {config_path}"));
    assert_eq!(
        source.canonicalize().ok(),
        root().join("docker/outboxd.toml").canonicalize().ok(),
        "the outboxd service must mount docker/outboxd.toml at {config_path}"
    );
    let (config, plan) = valid_config(&read("docker/outboxd.toml"), "docker/outboxd.toml");

    // Postgres: the service name, its user, database and password.
    let pg_env = compose_env(&services["postgres"]);
    let params = &plan.params;
    assert!(
        services.contains_key(&params.host),
        "source.url's host {} is not a compose service",
        params.host
    );
    assert_eq!(
        Some(&params.user),
        pg_env.get("POSTGRES_USER"),
        "source.url's user"
    );
    assert_eq!(
        Some(&params.dbname),
        pg_env.get("POSTGRES_DB"),
        "source.url's database"
    );
    let password = ConnectParams::from_url_with_env(&config.source.url, |_| None)
        .unwrap()
        .password
        .or_else(|| env.get("PGPASSWORD").cloned());
    assert_eq!(
        password.as_ref(),
        pg_env.get("POSTGRES_PASSWORD"),
        "outboxd's password (PGPASSWORD) must be the postgres service's POSTGRES_PASSWORD"
    );

    // Kafka: every bootstrap server is a compose service.
    let kafka = Config::string_map("kafka", &config.kafka).unwrap();
    let bootstrap = env
        .get("KAFKA_BOOTSTRAP_SERVERS")
        .or_else(|| kafka.get("bootstrap.servers"))
        .expect("bootstrap.servers");
    for server in bootstrap.split(',') {
        let host = server.trim().rsplit_once(':').map_or(server, |(h, _)| h);
        assert!(
            services.contains_key(host),
            "bootstrap server {server} is not a compose service"
        );
    }

    // The HTTP port is published, and shutdown has time to finish.
    let addr = env
        .get("OUTBOXD_HTTP_ADDR")
        .cloned()
        .or_else(|| dockerfile_runtime_env().remove("OUTBOXD_HTTP_ADDR"))
        .or(config.http.addr.clone())
        .expect("an http addr for outboxd");
    let port = listen_port(&addr, "outboxd's http addr").to_string();
    assert!(
        o["ports"].as_array().is_some_and(|ps| ps
            .iter()
            .filter_map(Value::as_str)
            .any(|p| p.rsplit(':').next() == Some(port.as_str()))),
        "the outboxd service does not publish its http port {port}"
    );
    let grace = o["stop_grace_period"].as_str().unwrap_or("10s");
    assert!(
        compose_duration_ms(grace) > config.pipeline.shutdown_timeout_ms,
        "stop_grace_period {grace} must exceed pipeline.shutdown_timeout_ms ({} ms)",
        config.pipeline.shutdown_timeout_ms
    );
}

#[test]
fn compose_file_passes_docker_compose_config() {
    let version = Command::new("docker").args(["compose", "version"]).output();
    if !matches!(&version, Ok(out) if out.status.success()) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP compose_file_passes_docker_compose_config: `docker compose version` does not work here (no docker CLI or no compose plugin)"
        );
        return;
    }
    let out = Command::new("docker")
        .args(["compose", "-f", "docker/docker-compose.yml", "config", "-q"])
        .current_dir(root())
        .output()
        .expect("run docker compose config");
    assert!(
        out.status.success(),
        "docker compose config -q failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- Dockerfile ----------------------------------------------------------------------------

#[test]
fn dockerfile_is_multi_stage_with_a_non_root_runtime_user() {
    let inst = dockerfile();
    let froms: Vec<usize> = inst
        .iter()
        .enumerate()
        .filter(|(_, (i, _))| i == "FROM")
        .map(|(n, _)| n)
        .collect();
    assert!(froms.len() >= 2, "docker/Dockerfile must be multi-stage");
    let last = *froms.last().unwrap();
    assert!(
        inst[last..]
            .iter()
            .any(|(i, a)| i == "COPY" && a.starts_with("--from=")),
        "the runtime stage must COPY the binary --from the build stage"
    );
    let user = inst[last..]
        .iter()
        .rev()
        .find(|(i, _)| i == "USER")
        .map(|(_, a)| a.clone())
        .expect("the runtime stage sets a USER");
    let name = user.split(':').next().unwrap();
    assert!(
        !matches!(name, "0" | "root"),
        "the runtime USER must not be root ({user})"
    );
    // Files the build copies from the context (the repository root) exist.
    for (i, args) in &inst {
        if i == "COPY" && !args.starts_with("--from=") {
            let words: Vec<&str> = args.split_whitespace().collect();
            for src in &words[..words.len() - 1] {
                assert!(
                    root().join(src).exists(),
                    "docker/Dockerfile copies {src}, which the repository lacks"
                );
            }
        }
    }
}

/// Cargo.toml's local paths (`[patch.crates-io]` entries such as vendor/rdkafka-sys) must be in
/// the build context before the first `cargo build`, or the image does not build.
#[test]
fn dockerfile_copies_the_vendored_crates_before_building() {
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).unwrap();
    let paths: Vec<String> = manifest
        .get("patch")
        .and_then(|p| p.get("crates-io"))
        .and_then(|c| c.as_table())
        .map(|t| {
            t.values()
                .filter_map(|d| d.get("path").and_then(|p| p.as_str()).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let inst = dockerfile();
    let first_build = inst
        .iter()
        .position(|(i, a)| i == "RUN" && a.contains("cargo build"))
        .expect("docker/Dockerfile runs cargo build");
    for path in &paths {
        let top = path.split('/').next().unwrap();
        assert!(
            inst[..first_build].iter().any(|(i, a)| i == "COPY"
                && a.split_whitespace()
                    .rev()
                    .skip(1)
                    .any(|src| src.trim_end_matches('/') == top || src == path)),
            "docker/Dockerfile must COPY {top} (Cargo.toml patches a crate with path {path}) \
             before its first cargo build"
        );
    }
}

// ---- Grafana -------------------------------------------------------------------------------

/// Families of `Metrics::render`'s text, name → (type, label names). Labelled families appear
/// only once they have a child, so each one gets a sample first.
fn rendered_metrics() -> BTreeMap<String, (String, BTreeSet<String>)> {
    use prometheus::core::Collector;
    let m = outboxd::metrics::Metrics::new();
    for vec in [
        &m.events_read,
        &m.events_published,
        &m.bytes_published,
        &m.events_failed,
        &m.events_dead_lettered,
        &m.changes_ignored,
        &m.kafka_transactions,
        &m.position_records,
        &m.cleanup_rows_deleted,
        &m.cleanup_errors,
    ] {
        let arity = vec.desc()[0].variable_labels.len();
        vec.with_label_values(&vec!["sample"; arity]).inc();
    }
    m.commit_to_ack_seconds.observe(0.01);
    m.kafka_commit_seconds.observe(0.01);
    let text = m.render();
    let mut out: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    let sample = regex::Regex::new(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ").unwrap();
    let label = regex::Regex::new(r#"([a-zA-Z_][a-zA-Z0-9_]*)=""#).unwrap();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            out.insert(name.to_string(), (kind.to_string(), BTreeSet::new()));
        } else if let Some(c) = sample.captures(line) {
            let name = &c[1];
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| out.contains_key(*f)))
                .unwrap_or(name);
            if let (Some(entry), Some(labels)) = (out.get_mut(family), c.get(2)) {
                entry.1.extend(
                    label
                        .captures_iter(labels.as_str())
                        .map(|l| l[1].to_string()),
                );
            }
        }
    }
    out
}

/// The metric names in docs/metrics.md's table.
fn documented_metrics() -> BTreeSet<String> {
    let re = regex::Regex::new(r"^\| `(outboxd_[a-z0-9_]+)` \|").unwrap();
    read("docs/metrics.md")
        .lines()
        .filter_map(|l| re.captures(l).map(|c| c[1].to_string()))
        .collect()
}

/// Every string in a JSON value.
fn strings(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Panels, with those nested in collapsed rows.
fn all_panels(dash: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dash["panels"].as_array().expect("panels") {
        out.push(p);
        if let Some(nested) = p["panels"].as_array() {
            out.extend(nested);
        }
    }
    out
}

#[test]
fn grafana_dashboard_is_valid_and_charts_exactly_the_metrics_outboxd_exports() {
    let path = "docker/grafana/outboxd-dashboard.json";
    let dash: Value = serde_json::from_str(&read(path))
        .unwrap_or_else(|e| panic!("{path} is not valid JSON: {e}"));

    // The dashboard model Grafana 10 imports.
    assert!(
        dash["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion must be that of Grafana 10 (36 or later)"
    );
    assert!(
        dash["title"].as_str().is_some_and(|t| !t.is_empty()),
        "title"
    );
    assert!(
        dash["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty() && u.len() <= 40),
        "uid: 1 to 40 characters"
    );
    assert!(
        dash["id"].is_null(),
        "id must be null so the dashboard imports anywhere"
    );
    let vars = dash["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let var_names: BTreeSet<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a $datasource variable of type datasource (prometheus)"
    );

    let panels = all_panels(&dash);
    let mut ids = BTreeSet::new();
    let known_types = [
        "row",
        "timeseries",
        "stat",
        "gauge",
        "bargauge",
        "table",
        "text",
        "heatmap",
    ];
    let var_ref = regex::Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)").unwrap();
    for p in &panels {
        let title = p["title"].as_str().unwrap_or("?");
        let id = p["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("panel {title}: id"));
        assert!(ids.insert(id), "panel id {id} is used twice");
        let kind = p["type"].as_str().unwrap_or("");
        assert!(known_types.contains(&kind), "panel {title}: type {kind:?}");
        let g = &p["gridPos"];
        let (x, w, h) = (g["x"].as_u64(), g["w"].as_u64(), g["h"].as_u64());
        assert!(
            matches!((x, w, h), (Some(x), Some(w), Some(h)) if w > 0 && h > 0 && x + w <= 24)
                && g["y"].is_u64(),
            "panel {title}: gridPos within 24 columns"
        );
        if kind == "row" || kind == "text" {
            continue;
        }
        assert_eq!(
            p["datasource"]["uid"], "${datasource}",
            "panel {title}: datasource must be the $datasource variable"
        );
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title} has no query");
        let mut refs = BTreeSet::new();
        for t in targets {
            assert!(
                refs.insert(t["refId"].as_str().expect("refId")),
                "panel {title}: refId used twice"
            );
            assert_eq!(
                t["datasource"]["uid"], "${datasource}",
                "panel {title}: query datasource"
            );
            let expr = str_of(&t["expr"], "expr");
            for c in var_ref.captures_iter(expr) {
                assert!(
                    c[1].starts_with("__") || var_names.contains(&c[1]),
                    "panel {title}: ${} is not a dashboard variable",
                    &c[1]
                );
            }
        }
    }

    // Metric names: each one documented and exported, with the labels it is queried by.
    let rendered = rendered_metrics();
    let documented = documented_metrics();
    let target_labels = ["instance", "job", "namespace", "pod", "container", "le"];
    let mut texts = Vec::new();
    strings(&dash, &mut texts);
    let name_re = regex::Regex::new(r"outboxd_[a-z0-9_]*[a-z0-9]").unwrap();
    let selector_re = regex::Regex::new(r"(outboxd_[a-z0-9_]+)\{([^}]*)\}").unwrap();
    let matcher_re = regex::Regex::new(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)").unwrap();
    let by_re = regex::Regex::new(r"\b(?:by|without)\s*\(([^)]*)\)").unwrap();
    let family_of = |name: &str| -> String {
        if rendered.contains_key(name) {
            return name.to_string();
        }
        ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| rendered.get(*f).is_some_and(|(k, _)| k == "histogram"))
            .unwrap_or(name)
            .to_string()
    };
    let mut charted = BTreeSet::new();
    for text in &texts {
        let mut families = BTreeSet::new();
        for name in name_re.find_iter(text) {
            let family = family_of(name.as_str());
            assert!(
                rendered.contains_key(&family),
                "{path} uses {}, which Metrics::render does not export",
                name.as_str()
            );
            assert!(
                documented.contains(&family),
                "{path} uses {family}, which docs/metrics.md does not list"
            );
            families.insert(family);
        }
        for sel in selector_re.captures_iter(text) {
            let (_, labels) = &rendered[&family_of(&sel[1])];
            for m in matcher_re.captures_iter(&sel[2]) {
                assert!(
                    labels.contains(&m[1]) || target_labels.contains(&&m[1]),
                    "{path}: {} has no label {} (it has {labels:?})",
                    &sel[1],
                    &m[1]
                );
            }
        }
        for by in by_re.captures_iter(text) {
            for l in by[1].split(',').map(str::trim).filter(|l| !l.is_empty()) {
                assert!(
                    target_labels.contains(&l)
                        || families.iter().any(|f| rendered[f].1.contains(l)),
                    "{path}: grouping by {l}, a label none of {families:?} has, in {text:?}"
                );
            }
        }
        charted.extend(families);
    }
    let missing: Vec<&String> = documented.difference(&charted).collect();
    assert!(
        missing.is_empty(),
        "{path} charts no panel for the documented metric(s) {missing:?}"
    );
    let undocumented: Vec<&String> = rendered
        .keys()
        .filter(|k| !documented.contains(*k))
        .collect();
    assert!(
        undocumented.is_empty(),
        "Metrics::render exports {undocumented:?}, which docs/metrics.md does not list"
    );
}
