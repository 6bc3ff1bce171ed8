//! `writ env measure`: the measurement JSON and its digest.

use writ_core::{canonical, Sha256Digest};

use crate::support::*;

#[test]
fn measure_prints_measurement_and_digest_of_its_canonical_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    write(&file, "hello");
    let spec = dir.path().join("spec.toml");
    write(
        &spec,
        &format!(
            "files = [\"{}\"]\nenv = [\"WRIT_TEST_MEASURED\", \"WRIT_TEST_UNSET\"]\nhostname = true\nworkload_id = {{ value = \"spiffe://test/agent\" }}\n",
            file.display()
        ),
    );
    let out = writ_cmd()
        .args(["env", "measure", "--spec", spec.to_str().unwrap(), "--json"])
        .env("WRIT_TEST_MEASURED", "yes")
        .env_remove("WRIT_TEST_UNSET")
        .output()
        .unwrap();
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let json = stdout_json(&out);
    let m = &json["measurement"];
    let canonical_path = std::fs::canonicalize(&file).unwrap().display().to_string();
    assert_eq!(
        m["files"][&canonical_path],
        Sha256Digest::of(b"hello").to_hex()
    );
    assert_eq!(m["env"]["WRIT_TEST_MEASURED"], "yes");
    assert!(m["env"]["WRIT_TEST_UNSET"].is_null());
    assert!(m["hostname"].is_string());
    assert_eq!(m["workload_id"], "spiffe://test/agent");
    let digest = canonical::digest(m).to_hex();
    assert_eq!(json["digest"], digest);

    // Default output is the same object, indented.
    let pretty = writ_cmd()
        .args(["env", "measure", "--spec", spec.to_str().unwrap()])
        .env("WRIT_TEST_MEASURED", "yes")
        .env_remove("WRIT_TEST_UNSET")
        .output()
        .unwrap();
    assert_eq!(stdout_json(&pretty)["digest"], digest);
}

#[test]
fn bad_specs_and_failed_measurements_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    write(&spec, "filez = []\n");
    assert_eq!(
        status(&run(
            &["env", "measure", "--spec", spec.to_str().unwrap()],
            None
        )),
        64
    );
    write(&spec, "files = [\"/no/such/file\"]\n");
    assert_eq!(
        status(&run(
            &["env", "measure", "--spec", spec.to_str().unwrap()],
            None
        )),
        70
    );
    assert_eq!(
        status(&run(&["env", "measure", "--spec", "/no/spec.toml"], None)),
        64
    );
}
