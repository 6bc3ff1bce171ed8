//! `writ serve` over TLS, with a test CA and certificate made at test time (rcgen).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_rustls::rustls;
use writ_core::KeySet;

use crate::support::*;

/// A test CA, a certificate it signed for `localhost` and 127.0.0.1, and its key, as files.
pub struct TestPki {
    pub ca_der: Vec<u8>,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// A key that does not belong to `cert`.
    pub other_key: PathBuf,
}

impl TestPki {
    pub fn new(dir: &Path) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "writ test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();

        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &ca).unwrap();

        let pki = TestPki {
            ca_der: ca.der().to_vec(),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            other_key: dir.join("other-key.pem"),
        };
        // The chain, leaf first.
        std::fs::write(&pki.cert, cert.pem() + &ca.pem()).unwrap();
        std::fs::write(&pki.key, key.serialize_pem()).unwrap();
        std::fs::write(
            &pki.other_key,
            rcgen::KeyPair::generate().unwrap().serialize_pem(),
        )
        .unwrap();
        pki
    }

    /// A ureq agent that trusts the test CA only.
    pub fn agent(&self) -> ureq::Agent {
        let ca = ureq::tls::Certificate::from_der(&self.ca_der).to_owned();
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![ca])))
            .build();
        ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into()
    }

    /// A rustls client configuration that trusts the test CA only.
    fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(self.ca_der.clone()))
            .unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }
}

/// A running `writ serve`; killed on drop.
pub struct Running {
    pub child: Child,
    pub url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }
}

/// Starts `writ serve ARGS` with `env` and waits until it says where it listens.
pub fn serve(args: &[&str], env: &[(&str, &str)]) -> Running {
    let mut cmd = writ_cmd();
    cmd.arg("serve")
        .args(args)
        .env("WRIT_LOG", "error")
        .env_remove("WRIT_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let url = loop {
        let Some(line) = lines.next() else {
            let _ = child.wait();
            panic!("writ serve ended before listening:\n{}", seen.join("\n"));
        };
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_string();
        }
        seen.push(line);
    };
    std::thread::spawn(move || for _ in lines {});
    Running { child, url }
}

fn get_json(agent: &ureq::Agent, url: &str) -> (u16, Value) {
    let mut res = agent.get(url).call().unwrap();
    let status = res.status().as_u16();
    (status, res.body_mut().read_json().unwrap())
}

#[test]
fn https_with_a_certificate_from_a_test_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::new(tmp.path());
    let data = tmp.path().join("data");
    let server = serve(
        &[
            "--tls-cert",
            pki.cert.to_str().unwrap(),
            "--tls-key",
            pki.key.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let base = format!("https://localhost:{}", server.port());
    let agent = pki.agent();

    let (status, health) = get_json(&agent, &format!("{base}/healthz"));
    assert_eq!((status, &health["status"]), (200, &Value::from("ok")));
    // By address too: the certificate names 127.0.0.1.
    let (status, _) = get_json(&agent, &format!("{}/healthz", server.url));
    assert_eq!(status, 200);
    let jwks = agent
        .get(format!("{base}/.well-known/jwks.json"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_eq!(KeySet::from_jwks_json(&jwks).unwrap().len(), 1);

    // At first start the issuer is named after the HTTPS address.
    let config = std::fs::read_to_string(data.join("writ.toml")).unwrap();
    assert!(
        config.contains(&format!("issuer = \"{}\"", server.url)),
        "{config}"
    );

    // Plain HTTP on the TLS port gets no answer.
    let plain: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let port = server.port();
    assert!(plain
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .call()
        .is_err());
    // Nor does a client that does not trust the test CA.
    let untrusting: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    assert!(untrusting.get(format!("{base}/healthz")).call().is_err());
    // The server is still fine.
    let (status, _) = get_json(&agent, &format!("{base}/healthz"));
    assert_eq!(status, 200);
}

#[test]
fn with_tls_any_address_is_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::new(tmp.path());
    let data = tmp.path().join("data");
    let server = serve(
        &[
            "--tls-cert",
            pki.cert.to_str().unwrap(),
            "--tls-key",
            pki.key.to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
            "--issuer",
            "https://writ.example",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    assert!(server.url.starts_with("https://0.0.0.0:"), "{}", server.url);
    let (status, _) = get_json(
        &pki.agent(),
        &format!("https://localhost:{}/healthz", server.port()),
    );
    assert_eq!(status, 200);
}

#[test]
fn tls_settings_from_the_config_file_with_relative_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let pki = TestPki::new(&etc);
    let config = etc.join("writ.toml");
    std::fs::write(
        &config,
        "issuer = \"https://writ.example\"\nlisten = \"127.0.0.1:0\"\n[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
    )
    .unwrap();
    let data = tmp.path().join("data");
    let server = serve(
        &["--data-dir", data.to_str().unwrap()],
        &[("WRIT_CONFIG", config.to_str().unwrap())],
    );
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let (status, _) = get_json(
        &pki.agent(),
        &format!("https://localhost:{}/healthz", server.port()),
    );
    assert_eq!(status, 200);
    // A config file named elsewhere is not copied into the data dir.
    assert!(!data.join("writ.toml").exists());
}

#[test]
fn unusable_certificates_and_keys_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::new(tmp.path());
    let garbage = tmp.path().join("garbage.pem");
    std::fs::write(&garbage, "not PEM at all\n").unwrap();
    let missing = tmp.path().join("missing.pem");
    let data = tmp.path().join("data");
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--tls-cert".into(),
                p(&missing),
                "--tls-key".into(),
                p(&pki.key),
            ],
            "TLS certificate",
        ),
        (
            vec![
                "--tls-cert".into(),
                p(&garbage),
                "--tls-key".into(),
                p(&pki.key),
            ],
            "TLS certificate",
        ),
        (
            vec![
                "--tls-cert".into(),
                p(&pki.cert),
                "--tls-key".into(),
                p(&garbage),
            ],
            "TLS key",
        ),
        (
            vec![
                "--tls-cert".into(),
                p(&pki.cert),
                "--tls-key".into(),
                p(&pki.cert),
            ],
            "TLS key",
        ),
        (
            vec![
                "--tls-cert".into(),
                p(&pki.cert),
                "--tls-key".into(),
                p(&pki.other_key),
            ],
            "TLS certificate",
        ),
        (vec!["--tls-cert".into(), p(&pki.cert)], "tls.key"),
    ];
    for (args, says) in cases {
        let mut argv = vec!["serve", "--listen", "127.0.0.1:0", "--data-dir"];
        let d = p(&data);
        argv.push(&d);
        argv.extend(args.iter().map(String::as_str));
        let out = run(&argv, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(status(&out), 64, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // Nothing was created.
    assert!(!data.exists());
}

/// Sends SIGTERM to `child` and waits for it to exit, at most `limit`.
fn terminate(child: &mut Child, limit: Duration) -> Option<i32> {
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn sigterm_lets_a_request_in_flight_over_tls_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::new(tmp.path());
    let data = tmp.path().join("data");
    let mut server = serve(
        &[
            "--tls-cert",
            pki.cert.to_str().unwrap(),
            "--tls-key",
            pki.key.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    // Half a request: the headers and part of the body, over a completed handshake.
    let tcp = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(pki.client_config(), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let body = b"{\"action\":\"exec\"}";
    write!(
        tls,
        "POST /v1/authorize HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    tls.write_all(&body[..5]).unwrap();
    tls.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(300));
    // Still running: it waits for the request.
    assert!(server.child.try_wait().unwrap().is_none());

    // The rest of the request gets its answer (401: it carries no token).
    tls.write_all(&body[5..]).unwrap();
    tls.flush().unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    // Then it exits cleanly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
}

#[test]
fn sigterm_stops_an_idle_tls_server() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = TestPki::new(tmp.path());
    let data = tmp.path().join("data");
    let mut server = serve(
        &[
            "--tls-cert",
            pki.cert.to_str().unwrap(),
            "--tls-key",
            pki.key.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    // A kept-alive connection does not hold the server up.
    let agent = pki.agent();
    let (status, _) = get_json(
        &agent,
        &format!("https://localhost:{}/healthz", server.port()),
    );
    assert_eq!(status, 200);
    assert_eq!(
        terminate(&mut server.child, Duration::from_secs(10)),
        Some(0)
    );
}
