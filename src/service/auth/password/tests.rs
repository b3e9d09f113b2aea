use argon2::{Argon2, Params, PasswordHash};

use super::*;

fn pw(s: &str) -> Password {
    Password::parse(s).unwrap()
}

#[tokio::test]
async fn hashes_verify_and_have_the_go_prefix() {
    let hasher =
        PasswordHasher::new(1, 4, HashPolicy::Bcrypt { cost: 4 }, Metrics::new("test")).unwrap();
    let hash = hasher.hash(pw("correct horse")).await.unwrap();
    assert!(hash.starts_with("$2a$04$"), "{hash}");
    assert_eq!(hash.len(), 60);
    assert!(
        hasher
            .verify(pw("correct horse"), hash.clone())
            .await
            .unwrap()
    );
    assert!(!hasher.verify(pw("correct horsf"), hash).await.unwrap());
}

#[tokio::test]
async fn legacy_prefixes_verify() {
    let hasher =
        PasswordHasher::new(1, 4, HashPolicy::Bcrypt { cost: 4 }, Metrics::new("test")).unwrap();
    let hash = hasher.hash(pw("password1")).await.unwrap();
    for prefix in ["$2b$", "$2y$"] {
        let legacy = format!("{prefix}{}", &hash[4..]);
        assert!(
            hasher.verify(pw("password1"), legacy).await.unwrap(),
            "{prefix}"
        );
    }
    assert!(
        !hasher
            .verify(pw("password1"), "not a hash".into())
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn every_byte_of_a_long_password_counts() {
    let hasher =
        PasswordHasher::new(1, 4, HashPolicy::Bcrypt { cost: 4 }, Metrics::new("test")).unwrap();
    let long = "a".repeat(100);
    let hash = hasher.hash(pw(&long)).await.unwrap();
    assert!(hasher.verify(pw(&long), hash.clone()).await.unwrap());
    let same_prefix = format!("{}b", "a".repeat(99));
    assert!(!hasher.verify(pw(&same_prefix), hash.clone()).await.unwrap());
    assert!(!hasher.verify(pw(&"a".repeat(72)), hash).await.unwrap());
}

/// Our PHC strings are the standard ones: the argon2 crate's own verifier accepts them,
/// and ours accepts the crate's.
#[test]
fn argon2id_strings_agree_with_the_reference_implementation() {
    use argon2::{PasswordHasher as _, PasswordVerifier as _, password_hash::SaltString};
    let params = Params::new(64, 2, 1, None).unwrap();
    let ours = HashPolicy::Argon2id(params.clone())
        .hash("hunter2hunter2")
        .unwrap();
    let parsed = PasswordHash::new(&ours).unwrap();
    assert!(
        Argon2::default()
            .verify_password(b"hunter2hunter2", &parsed)
            .is_ok()
    );
    assert!(
        Argon2::default()
            .verify_password(b"hunter2hunter3", &parsed)
            .is_err()
    );
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let theirs = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(b"hunter2hunter2", &salt)
        .unwrap()
        .to_string();
    assert!(verify("hunter2hunter2", &theirs));
    assert!(!verify("hunter2hunter3", &theirs));
    assert!(!verify(
        "hunter2hunter2",
        "$argon2id$v=19$m=64,t=2,p=1$bad$bad"
    ));
}

#[tokio::test]
async fn argon2id_hashes_verify_and_every_kind_is_told_apart() {
    let params = Params::new(64, 1, 1, None).unwrap();
    let hasher =
        PasswordHasher::new(1, 4, HashPolicy::Argon2id(params), Metrics::new("test")).unwrap();
    let hash = hasher.hash(pw("correct horse")).await.unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
    assert!(
        hasher
            .verify(pw("correct horse"), hash.clone())
            .await
            .unwrap()
    );
    assert!(
        !hasher
            .verify(pw("correct horsf"), hash.clone())
            .await
            .unwrap()
    );
    assert!(!hasher.policy().needs_rehash(&hash));
    let stronger = HashPolicy::Argon2id(Params::new(128, 1, 1, None).unwrap());
    assert!(stronger.needs_rehash(&hash), "other parameters");
    assert!(
        HashPolicy::Bcrypt { cost: 4 }.needs_rehash(&hash),
        "other kind"
    );
    // A bcrypt hash still verifies with the Argon2id policy, and asks to be upgraded.
    let bcrypt =
        PasswordHasher::new(1, 4, HashPolicy::Bcrypt { cost: 4 }, Metrics::new("test")).unwrap();
    let old = bcrypt.hash(pw("password1")).await.unwrap();
    assert!(hasher.verify(pw("password1"), old.clone()).await.unwrap());
    assert!(hasher.policy().needs_rehash(&old));
    assert!(!bcrypt.policy().needs_rehash(&old));
    assert!(
        HashPolicy::Bcrypt { cost: 10 }.needs_rehash(&old),
        "another cost"
    );
    hasher.verify_dummy(pw("anything")).await.unwrap();
}

#[tokio::test]
async fn weak_passwords_score_low() {
    let hasher =
        PasswordHasher::new(1, 4, HashPolicy::Bcrypt { cost: 4 }, Metrics::new("test")).unwrap();
    assert!(hasher.strength(pw("password123"), vec![]).await.unwrap() <= 1);
    let email = "ming.hsu@example.com";
    assert!(
        hasher.strength(pw(email), vec![]).await.unwrap() >= 3,
        "alone it looks strong"
    );
    assert_eq!(
        hasher
            .strength(pw(email), vec![email.into()])
            .await
            .unwrap(),
        0,
        "the customer's own data counts against it"
    );
    assert!(
        hasher
            .strength(pw("correct horse battery staple vortex"), vec![])
            .await
            .unwrap()
            >= 3
    );
}

#[tokio::test]
async fn full_queue_is_refused_at_once() {
    let hasher =
        PasswordHasher::new(1, 1, HashPolicy::Bcrypt { cost: 4 }, Metrics::new("test")).unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (started_tx, started_rx) = oneshot::channel::<()>();
    // Occupy the only thread until released, then fill the one queue slot.
    let blocker = tokio::spawn({
        let hasher = hasher.clone();
        async move {
            hasher
                .run("test", Algorithm::Bcrypt, move || {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                })
                .await
        }
    });
    started_rx.await.unwrap();
    let queued = tokio::spawn({
        let hasher = hasher.clone();
        async move { hasher.hash(pw("password1")).await }
    });
    while hasher.queue_depth() == 0 {
        tokio::task::yield_now().await;
    }
    let refused = hasher.verify(pw("password1"), String::new()).await;
    assert!(
        matches!(refused, Err(Error::Unavailable(Unavailable::HashPoolFull))),
        "{refused:?}"
    );
    release_tx.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    assert!(queued.await.unwrap().is_ok());
}
