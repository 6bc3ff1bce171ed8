//! The gate config file as `writ gate init` writes it and the gates read it.

use std::path::Path;

use writ_gate::{default_config_path, ConfigError, GateConfig, DEFAULT_PASS_ENV};

#[test]
fn a_written_config_loads_back_with_paths_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.toml");
    std::fs::write(
        &path,
        "authority_url = \"https://writ.example.com\"\nissuer = \"https://writ.example.com\"\n\
         executor = \"gate-1\"\nexecutor_key = \"gate.key.pem\"\n\
         executor_token_file = \"gate.token\"\njwks = \"gate.jwks.json\"\n\
         env_spec = \"/etc/writ/env.toml\"\n",
    )
    .unwrap();
    let config = GateConfig::load(&path).unwrap();
    assert_eq!(config.executor_key, dir.path().join("gate.key.pem"));
    assert_eq!(config.jwks, dir.path().join("gate.jwks.json"));
    assert_eq!(
        config.env_spec.as_deref(),
        Some(Path::new("/etc/writ/env.toml"))
    );
    assert_eq!(config.pass_env, DEFAULT_PASS_ENV);
    assert_eq!(config.ca_cert, None);

    std::fs::write(&path, config.to_toml()).unwrap();
    assert_eq!(GateConfig::load(&path).unwrap(), config);
}

#[test]
fn a_misspelt_or_missing_config_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.toml");
    assert!(matches!(
        GateConfig::load(&path),
        Err(ConfigError::Read { .. })
    ));
    std::fs::write(
        &path,
        "authority_url = \"https://x\"\nexecuter = \"gate-1\"\n",
    )
    .unwrap();
    let err = GateConfig::load(&path).unwrap_err().to_string();
    assert!(err.contains("executer"), "{err}");
    assert_eq!(
        default_config_path(&|name| (name == "XDG_CONFIG_HOME").then(|| dir.path().into())),
        Some(dir.path().join("writ/gate.toml"))
    );
}
