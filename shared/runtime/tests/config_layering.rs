//! Config layering (defaults < default.toml < {profile}.toml < env), unknown keys, and
//! validation messages that name the field and the limit.

use serde::{Deserialize, Serialize};
use std::path::Path;
use storyreel_runtime::{
    ServerConfig, Validate, ValidationError,
    config::{ConfigError, Sources, check_range, load},
    telemetry::{LogFormat, TelemetryConfig},
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DemoConfig {
    server: ServerConfig,
    telemetry: TelemetryConfig,
    max_batch: usize,
    model_dir: String,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            server: ServerConfig::default(),
            telemetry: TelemetryConfig::default(),
            max_batch: 4,
            model_dir: "models/demo".into(),
        }
    }
}

impl Validate for DemoConfig {
    fn validate(&self) -> Result<(), ValidationError> {
        self.server.validate().map_err(|e| e.within("server"))?;
        self.telemetry.validate().map_err(|e| e.within("telemetry"))?;
        check_range("max_batch", self.max_batch, 1, 32)
    }
}

fn write(dir: &Path, file: &str, text: &str) {
    std::fs::write(dir.join(file), text).unwrap();
}

fn sources(dir: &Path, profile: Option<&str>, env: &[(&str, &str)]) -> Sources {
    Sources {
        dir: dir.to_path_buf(),
        profile: profile.map(str::to_string),
        env: Some(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
    }
}

#[test]
fn built_in_defaults_apply_without_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let config: DemoConfig = load("demo", &sources(dir.path(), None, &[])).unwrap();
    assert_eq!(config, DemoConfig::default());
}

#[test]
fn each_layer_overrides_the_one_below_key_by_key() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "default.toml",
        "[demo]\nmax_batch = 8\nmodel_dir = \"from-default\"\n[demo.server]\nconcurrency_limit = 10\n[other]\nx = 1\n",
    );
    write(
        dir.path(),
        "prod.toml",
        "[demo]\nmax_batch = 16\n[demo.telemetry]\nlog_format = \"json\"\n",
    );
    let env = [
        ("STORYREEL_DEMO__SERVER__LISTEN", "0.0.0.0:7000"),
        ("STORYREEL_DEMO__MAX_BATCH", "32"),
        ("STORYREEL_OTHER__Y", "ignored: another service's key"),
    ];
    let config: DemoConfig = load("demo", &sources(dir.path(), Some("prod"), &env)).unwrap();
    assert_eq!(config.model_dir, "from-default"); // default.toml
    assert_eq!(config.server.concurrency_limit, 10); // default.toml, nested
    assert_eq!(config.telemetry.log_format, LogFormat::Json); // profile
    assert_eq!(config.max_batch, 32); // env beats profile
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:7000"); // env, nested
    assert_eq!(
        config.server.request_timeout_ms,
        ServerConfig::default().request_timeout_ms
    ); // built-in
}

#[test]
fn unknown_keys_are_errors_in_files_and_in_env() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "default.toml", "[demo]\nmax_bacth = 8\n");
    let err = load::<DemoConfig>("demo", &sources(dir.path(), None, &[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_bacth"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let env = [("STORYREEL_DEMO__SERVER__LISTN", "0.0.0.0:1")];
    let err = load::<DemoConfig>("demo", &sources(dir.path(), None, &env))
        .unwrap_err()
        .to_string();
    assert!(err.contains("listn"), "{err}");
}

#[test]
fn validation_names_the_field_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("STORYREEL_DEMO__MAX_BATCH", "64")];
    let err = load::<DemoConfig>("demo", &sources(dir.path(), None, &env)).unwrap_err();
    match &err {
        ConfigError::Invalid { source, .. } => assert_eq!(source.field, "max_batch"),
        other => panic!("expected a validation error, got {other}"),
    }
    assert!(
        err.to_string()
            .contains("`max_batch` must be between 1 and 32, got 64"),
        "{err}"
    );

    let env = [("STORYREEL_DEMO__SERVER__CONCURRENCY_LIMIT", "0")];
    let err = load::<DemoConfig>("demo", &sources(dir.path(), None, &env))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`server.concurrency_limit` must be between 1 and 100000, got 0"),
        "{err}"
    );

    let env = [("STORYREEL_DEMO__TELEMETRY__SAMPLE_RATIO", "1.5")];
    let err = load::<DemoConfig>("demo", &sources(dir.path(), None, &env))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`telemetry.sample_ratio` must be between 0 and 1, got 1.5"),
        "{err}"
    );
}

#[test]
fn a_wrong_type_and_a_missing_profile_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("STORYREEL_DEMO__MAX_BATCH", "many")];
    let err = load::<DemoConfig>("demo", &sources(dir.path(), None, &env))
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_batch"), "{err}");

    let err = load::<DemoConfig>("demo", &sources(dir.path(), Some("staging"), &[])).unwrap_err();
    assert!(matches!(err, ConfigError::MissingProfile { .. }), "{err}");
    assert!(err.to_string().contains("staging.toml"), "{err}");
}

#[test]
fn the_repository_default_toml_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let _: DemoConfig = load("demo", &sources(&dir, None, &[])).unwrap();
}
