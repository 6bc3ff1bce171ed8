//! Principals: registration, token authentication by digest, disabling.

use writ_core::Sha256Digest;
use writ_store::{Role, SqlitePrincipals, StoreError};

#[test]
fn tokens_authenticate_by_digest_until_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlitePrincipals::open(&dir.path().join("writ.db")).unwrap();
    let token = Sha256Digest::of(b"writ_secret-token");
    let p = store
        .add("build-agent", Role::Agent, &["ci".into()], &token, 100)
        .unwrap();
    assert_eq!(p.role, Role::Agent);
    assert_eq!(store.authenticate(&token).unwrap(), Some(p.clone()));
    assert_eq!(
        store.authenticate(&Sha256Digest::of(b"other")).unwrap(),
        None
    );
    assert!(matches!(
        store.add("build-agent", Role::Admin, &[], &Sha256Digest::of(b"x"), 1),
        Err(StoreError::PrincipalExists(_))
    ));
    // The same token cannot name two principals.
    assert!(store.add("second", Role::Agent, &[], &token, 1).is_err());
    assert!(matches!(
        store.add("bad name", Role::Agent, &[], &Sha256Digest::of(b"y"), 1),
        Err(StoreError::InvalidName(_))
    ));
    assert!(store.disable("build-agent").unwrap());
    assert!(!store.disable("nobody").unwrap());
    assert_eq!(store.authenticate(&token).unwrap(), None);
    let listed = store.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].disabled);
    // Nothing in the database is the token itself.
    drop(store);
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(!bytes.windows(17).any(|w| w == b"writ_secret-token"));
    }
    assert_eq!("executor".parse::<Role>(), Ok(Role::Executor));
    assert!("root".parse::<Role>().is_err());
}
