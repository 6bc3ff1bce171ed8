//! Environment measurement: what is recorded, and that every change shows in the digest.

use std::collections::HashMap;

use writ_core::Sha256Digest;
use writ_gate::{measure, EnvSpec, MeasureError};

fn lookup<'a>(vars: &'a HashMap<&'a str, &'a str>) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| vars.get(name).map(|v| v.to_string())
}

#[test]
fn measures_files_vars_executable_and_sources() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(&config, b"mode = strict\n").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&config, &link).unwrap();
    let id_file = dir.path().join("workload");
    std::fs::write(&id_file, "spiffe://example/agent\n").unwrap();
    let spec = EnvSpec::from_toml(&format!(
        r#"
        files = ["{link}"]
        env = ["PATH", "UNSET"]
        executable = "{config}"
        container_image = {{ env = "IMAGE" }}
        workload_id = {{ file = "{id}" }}
        "#,
        link = link.display(),
        config = config.display(),
        id = id_file.display(),
    ))
    .unwrap();
    let vars = HashMap::from([("PATH", "/usr/bin"), ("IMAGE", "sha256:abc")]);
    let m = measure(&spec, &lookup(&vars)).unwrap();
    let canonical = std::fs::canonicalize(&config)
        .unwrap()
        .display()
        .to_string();
    assert_eq!(
        m.files.get(&canonical),
        Some(&Sha256Digest::of(b"mode = strict\n"))
    );
    assert_eq!(m.env.get("PATH"), Some(&Some("/usr/bin".to_string())));
    assert_eq!(m.env.get("UNSET"), Some(&None));
    assert_eq!(m.executable.as_ref().unwrap().path, canonical);
    assert_eq!(m.container_image.as_deref(), Some("sha256:abc"));
    assert_eq!(m.workload_id.as_deref(), Some("spiffe://example/agent"));
    assert_eq!(m.hostname, None);

    // Any change to a measured file changes the digest.
    let before = m.digest();
    std::fs::write(&config, b"mode = lax\n").unwrap();
    let after = measure(&spec, &lookup(&vars)).unwrap().digest();
    assert_ne!(before, after);
    // So does a changed variable.
    let vars2 = HashMap::from([("PATH", "/tmp/evil:/usr/bin"), ("IMAGE", "sha256:abc")]);
    assert_ne!(measure(&spec, &lookup(&vars2)).unwrap().digest(), after);
}

#[test]
fn hostname_is_read() {
    let spec = EnvSpec::from_toml("hostname = true").unwrap();
    let m = measure(&spec, &|_| None).unwrap();
    assert!(!m.hostname.unwrap().is_empty());
}

#[test]
fn failures_are_errors() {
    assert!(matches!(
        EnvSpec::from_toml("filez = []"),
        Err(MeasureError::Spec(_))
    ));
    assert!(matches!(
        EnvSpec::from_toml("files = 3"),
        Err(MeasureError::Spec(_))
    ));
    let spec = EnvSpec::from_toml(r#"files = ["/definitely/not/here"]"#).unwrap();
    assert!(matches!(
        measure(&spec, &|_| None),
        Err(MeasureError::File { .. })
    ));
    let spec = EnvSpec::from_toml(r#"container_image = { env = "NOPE" }"#).unwrap();
    assert!(matches!(
        measure(&spec, &|_| None),
        Err(MeasureError::Source { .. })
    ));
    let spec = EnvSpec::from_toml(r#"workload_id = { value = "" }"#).unwrap();
    assert!(matches!(
        measure(&spec, &|_| None),
        Err(MeasureError::Source { .. })
    ));
}
