//! The vault on SQLite and Postgres: sealing and opening personal data, erasure in this process
//! and in another, and values that are not sealed or were tampered with.

#[allow(dead_code, reason = "these scenarios need no fixed time")]
mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use marquee_auth::{AuthError, AuthStore, Opened, Vault};

on_every_backend!(
    a_sealed_value_opens_to_its_plaintext_and_differs_each_time,
    person_ids_are_stable_across_processes_and_reveal_no_address,
    an_erased_person_reads_as_erased_here_at_once_and_elsewhere_after_the_cache_ttl,
    nothing_can_be_sealed_for_an_erased_person,
    a_value_that_is_not_sealed_opens_as_itself,
    a_tampered_sealed_value_is_an_error_not_a_panic,
    a_batch_opens_with_one_result_per_value,
    two_processes_sealing_for_a_new_person_agree_on_one_key,
    keys_readied_for_many_persons_at_once_are_the_ones_every_process_uses,
);

/// A vault on its own pool, as another process would have.
async fn open_vault(url: &str) -> Vault {
    let store = AuthStore::connect(url).await.expect("connect");
    Vault::new(store).await.expect("vault")
}

fn plain(text: &str) -> Opened {
    Opened::Plain(text.to_owned())
}

async fn a_sealed_value_opens_to_its_plaintext_and_differs_each_time(url: &str) {
    let vault = open_vault(url).await;
    let ada = vault.person_id("ada@example.com");
    let first = vault.seal(&ada, "Ada Lovelace").await.expect("seal");
    let second = vault.seal(&ada, "Ada Lovelace").await.expect("seal");
    assert_ne!(first, second, "a fresh nonce every time");
    for sealed in [&first, &second] {
        assert!(sealed.starts_with(&format!("sealed:v1:{ada}:")), "{sealed}");
        assert!(!sealed.contains("Ada"), "{sealed}");
        assert!(Vault::is_sealed(sealed));
        assert_eq!(vault.open(sealed).await, Ok(plain("Ada Lovelace")));
    }
    let empty = vault.seal(&ada, "").await.expect("seal");
    assert_eq!(vault.open(&empty).await, Ok(plain("")));
    let unicode = vault.seal(&ada, "Zoë Ünal 🎟").await.expect("seal");
    assert_eq!(vault.open(&unicode).await, Ok(plain("Zoë Ünal 🎟")));
    // Another process on the same database opens it too.
    assert_eq!(
        open_vault(url).await.open(&first).await,
        Ok(plain("Ada Lovelace"))
    );
}

async fn person_ids_are_stable_across_processes_and_reveal_no_address(url: &str) {
    let here = open_vault(url).await;
    let there = open_vault(url).await;
    let ada = here.person_id("ada@example.com");
    assert_eq!(ada.len(), 32);
    assert!(ada.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(there.person_id("  ADA@example.com "), ada);
    assert_ne!(here.person_id("eve@example.com"), ada);
    assert!(!ada.contains("ada"));
}

async fn an_erased_person_reads_as_erased_here_at_once_and_elsewhere_after_the_cache_ttl(
    url: &str,
) {
    let here = open_vault(url).await;
    // Another process that reads keys from the database every time (a TTL of zero stands in
    // for "after the TTL"), and one that cached the key just before the erasure.
    let uncached = open_vault(url).await.with_key_cache_ttl(Duration::ZERO);
    let cached = open_vault(url)
        .await
        .with_key_cache_ttl(Duration::from_secs(3600));
    let ada = here.person_id("ada@example.com");
    let eve = here.person_id("eve@example.com");
    let sealed = here.seal(&ada, "ada@example.com").await.expect("seal");
    let other = here.seal(&eve, "Eve").await.expect("seal");
    assert_eq!(here.open(&sealed).await, Ok(plain("ada@example.com")));
    assert_eq!(uncached.open(&sealed).await, Ok(plain("ada@example.com")));
    assert_eq!(cached.open(&sealed).await, Ok(plain("ada@example.com")));

    here.erase(&ada).await.expect("erase");
    assert_eq!(here.open(&sealed).await, Ok(Opened::Erased));
    assert_eq!(uncached.open(&sealed).await, Ok(Opened::Erased));
    assert_eq!(
        open_vault(url).await.open(&sealed).await,
        Ok(Opened::Erased)
    );
    // As documented: a process that cached the key keeps opening until its TTL runs out.
    assert_eq!(cached.open(&sealed).await, Ok(plain("ada@example.com")));
    // Nobody else is touched.
    assert_eq!(here.open(&other).await, Ok(plain("Eve")));
    assert_eq!(uncached.open(&other).await, Ok(plain("Eve")));
    // Erasing twice is fine.
    uncached.erase(&ada).await.expect("erase again");
}

async fn nothing_can_be_sealed_for_an_erased_person(url: &str) {
    let here = open_vault(url).await;
    let elsewhere = open_vault(url).await.with_key_cache_ttl(Duration::ZERO);
    let ada = here.person_id("ada@example.com");
    here.seal(&ada, "Ada").await.expect("seal");
    here.erase(&ada).await.expect("erase");
    assert_eq!(here.seal(&ada, "Ada").await, Err(AuthError::PersonErased));
    assert_eq!(
        elsewhere.seal(&ada, "Ada").await,
        Err(AuthError::PersonErased)
    );
    // Erasing a person who never had anything sealed forbids it from then on, too.
    let eve = here.person_id("eve@example.com");
    here.erase(&eve).await.expect("erase");
    assert_eq!(
        elsewhere.seal(&eve, "Eve").await,
        Err(AuthError::PersonErased)
    );
    assert_eq!(
        here.seal("not:an:id", "x").await,
        Err(AuthError::InvalidPersonId)
    );
}

async fn a_value_that_is_not_sealed_opens_as_itself(url: &str) {
    let vault = open_vault(url).await;
    for value in [
        "Ada Lovelace",
        "",
        "ada@example.com",
        "sealed",
        "sealed:v0:x:y:z",
        "Sealed:v1:x:y:z",
    ] {
        assert_eq!(vault.open(value).await, Ok(plain(value)), "{value:?}");
        assert!(!Vault::is_sealed(value));
    }
}

async fn a_tampered_sealed_value_is_an_error_not_a_panic(url: &str) {
    let vault = open_vault(url).await;
    let ada = vault.person_id("ada@example.com");
    let eve = vault.person_id("eve@example.com");
    let sealed = vault.seal(&ada, "Ada Lovelace").await.expect("seal");
    vault.seal(&eve, "Eve").await.expect("seal");
    let fields: Vec<&str> = sealed.split(':').collect();
    assert_eq!(fields.len(), 5);
    let (nonce, ciphertext) = (fields[3], fields[4]);

    let flipped = flip_ciphertext_bit(&sealed);
    let mut other_nonce = URL_SAFE_NO_PAD.decode(nonce).expect("base64url");
    other_nonce[11] ^= 0x80;
    let other_nonce = URL_SAFE_NO_PAD.encode(other_nonce);
    let truncated = &ciphertext[..ciphertext.len() - 4];

    for tampered in [
        flipped,
        format!("sealed:v1:{ada}:{other_nonce}:{ciphertext}"),
        format!("sealed:v1:{ada}:{nonce}:{truncated}"),
        // Passed off as another person's data: the person id is authenticated too.
        format!("sealed:v1:{eve}:{nonce}:{ciphertext}"),
        format!("sealed:v1:{ada}:{nonce}"),
        format!("sealed:v1:{ada}:{nonce}:{ciphertext}:"),
        format!("sealed:v1:{ada}:???:{ciphertext}"),
        "sealed:v1:".to_owned(),
    ] {
        let opened = vault.open(&tampered).await;
        assert!(
            matches!(opened, Err(AuthError::BadSeal(_))),
            "{tampered}: {opened:?}"
        );
    }
}

/// `sealed` with one bit of its ciphertext flipped.
fn flip_ciphertext_bit(sealed: &str) -> String {
    let (head, ciphertext) = sealed.rsplit_once(':').expect("sealed");
    let mut bytes = URL_SAFE_NO_PAD.decode(ciphertext).expect("base64url");
    bytes[0] ^= 1;
    format!("{head}:{}", URL_SAFE_NO_PAD.encode(bytes))
}

async fn a_batch_opens_with_one_result_per_value(url: &str) {
    let vault = open_vault(url).await;
    let ada = vault.person_id("ada@example.com");
    let eve = vault.person_id("eve@example.com");
    let ada_name = vault.seal(&ada, "Ada").await.expect("seal");
    let ada_mail = vault.seal(&ada, "ada@example.com").await.expect("seal");
    let eve_name = vault.seal(&eve, "Eve").await.expect("seal");
    vault.erase(&eve).await.expect("erase");
    let tampered = flip_ciphertext_bit(&ada_name);

    // A vault with nothing cached: all keys in one query.
    let fresh = open_vault(url).await;
    let values = [
        ada_name.as_str(),
        "legacy plain text",
        eve_name.as_str(),
        tampered.as_str(),
        ada_mail.as_str(),
    ];
    let opened = fresh.open_many(&values).await.expect("database");
    assert_eq!(opened.len(), 5);
    assert_eq!(opened[0], Ok(plain("Ada")));
    assert_eq!(opened[1], Ok(plain("legacy plain text")));
    assert_eq!(opened[2], Ok(Opened::Erased));
    assert!(
        matches!(opened[3], Err(AuthError::BadSeal(_))),
        "{:?}",
        opened[3]
    );
    assert_eq!(opened[4], Ok(plain("ada@example.com")));
    let nothing: [&str; 0] = [];
    assert_eq!(fresh.open_many(&nothing).await, Ok(vec![]));
}

async fn two_processes_sealing_for_a_new_person_agree_on_one_key(url: &str) {
    let (one, two) = (open_vault(url).await, open_vault(url).await);
    let ada = one.person_id("ada@example.com");
    let (a, b) = tokio::join!(one.seal(&ada, "from one"), two.seal(&ada, "from two"));
    let (a, b) = (a.expect("seal"), b.expect("seal"));
    assert_eq!(two.open(&a).await, Ok(plain("from one")));
    assert_eq!(one.open(&b).await, Ok(plain("from two")));
}

/// A well-formed sealed value for `person` that no key decrypts: it opens as erased only when
/// the database holds no key for the person.
fn probe(person: &str) -> String {
    format!("sealed:v1:{person}:AAAAAAAAAAAAAAAA:AAAAAAAAAAAAAAAAAAAAAA")
}

async fn keys_readied_for_many_persons_at_once_are_the_ones_every_process_uses(url: &str) {
    let here = open_vault(url).await;
    let ada = here.person_id("ada@example.com");
    let eve = here.person_id("eve@example.com");
    let (bob, cy) = (
        here.person_id("bob@example.com"),
        here.person_id("cy@example.com"),
    );
    let sealed_for_ada = here.seal(&ada, "Ada").await.expect("seal");
    here.erase(&eve).await.expect("erase");

    // Another process readies keys for a known person, two new ones (one named twice) and an
    // erased one, all at once.
    let there = open_vault(url).await;
    there
        .prepare(&[&ada, &bob, &cy, &eve, &bob])
        .await
        .expect("prepare");
    // The known person's key is the one already stored.
    assert_eq!(there.open(&sealed_for_ada).await, Ok(plain("Ada")));
    let for_ada = there.seal(&ada, "Ada again").await.expect("seal");
    assert_eq!(here.open(&for_ada).await, Ok(plain("Ada again")));
    // The new persons' keys are stored: a third process, reading the database every time,
    // opens what was sealed with them.
    let elsewhere = open_vault(url).await.with_key_cache_ttl(Duration::ZERO);
    for (person, text) in [(&bob, "Bob"), (&cy, "Cy")] {
        let sealed = there.seal(person, text).await.expect("seal");
        assert_eq!(elsewhere.open(&sealed).await, Ok(plain(text)));
    }
    // Readying a key makes no erased person live again.
    assert_eq!(there.seal(&eve, "Eve").await, Err(AuthError::PersonErased));
    // Readying the same persons again, in a process that raced to make them, changes nothing.
    open_vault(url)
        .await
        .prepare(&[&bob, &cy])
        .await
        .expect("prepare again");
    let sealed_for_bob = there.seal(&bob, "Bob").await.expect("seal");
    assert_eq!(elsewhere.open(&sealed_for_bob).await, Ok(plain("Bob")));

    // An invalid person id refuses the whole call before anything is stored.
    let dan = here.person_id("dan@example.com");
    assert_eq!(
        there.prepare(&[&dan, "not a person id!"]).await,
        Err(AuthError::InvalidPersonId)
    );
    assert_eq!(elsewhere.open(&probe(&dan)).await, Ok(Opened::Erased));
}
