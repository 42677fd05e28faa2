//! Sealing of secrets (design.md §3): every OAuth token, CalDAV password and PKCE
//! verifier is encrypted with XChaCha20-Poly1305 before it reaches the database.
//!
//! The sealed text is `v1.<key id>.<base64url(nonce || ciphertext)>`. The key id
//! lets several keys coexist during a rotation; the additional data names the
//! row and column a value belongs to, so a sealed value copied into another row
//! (or column) fails to open instead of silently handing over someone's token.
//! This module never logs and never puts secret material into its errors.
//!
//! Each key also yields an identity key (HMAC-SHA256 of a fixed label under
//! the key), for [`Keyring::keyed_ids`]: stable, keyed digests of secrets
//! such as a feed URL, so that a row can be found by its secret without
//! storing an unsalted hash that anyone holding a candidate URL could
//! confirm. The AEAD key itself is never used for anything else.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

const VERSION: &str = "v1";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
/// Hex characters of a key id; fixed so that SQL can read it with `substr`.
pub(crate) const KEY_ID_LEN: usize = 8;
/// Length of the `v1.<key id>` prefix of every sealed value.
pub(crate) const SEALED_PREFIX_LEN: usize = VERSION.len() + 1 + KEY_ID_LEN;

/// Why a key could not be loaded or a value could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("an encryption key must be 32 bytes, base64-encoded (key #{index} is not)")]
    BadKey { index: usize },
    #[error("no encryption key is configured")]
    NoKeys,
    #[error("the sealed value is malformed")]
    Malformed,
    #[error("the value was sealed with key id {0}, which is not among the configured keys")]
    UnknownKey(String),
    #[error("the sealed value does not open: wrong key, or it was moved from another row")]
    Unopenable,
}

/// Where a sealed value lives; it becomes the AEAD's additional data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealContext(String);

impl SealContext {
    /// `table.column` of the row identified by `row_key` (a stable natural key,
    /// known before the row is inserted).
    pub fn new(table: &str, column: &str, row_key: &str) -> Self {
        Self(format!("calsync:{table}.{column}:{row_key}"))
    }
}

type HmacSha256 = Hmac<Sha256>;

/// The label the identity key is derived under (domain separation).
const IDENTITY_LABEL: &[u8] = b"calsync identity key v1";

struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
    /// HMAC keyed with HMAC-SHA256(key, IDENTITY_LABEL).
    identity: HmacSha256,
}

/// The configured keys; the first one seals, all of them open.
pub struct Keyring {
    keys: Vec<Key>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Keyring").field("key_ids", &ids).finish()
    }
}

impl Keyring {
    /// Parses comma-separated base64 keys, as `CALSYNC_ENCRYPTION_KEY` holds them.
    pub fn from_base64_list(list: &SecretString) -> Result<Self, SealError> {
        let keys = list
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .enumerate()
            .map(|(index, part)| {
                let bytes = SecretBox::new(Box::new(
                    STANDARD
                        .decode(part)
                        .map_err(|_| SealError::BadKey { index: index + 1 })?,
                ));
                Self::key_from_bytes(bytes.expose_secret())
                    .ok_or(SealError::BadKey { index: index + 1 })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SealError::NoKeys);
        }
        Ok(Self { keys })
    }

    /// A fresh random key, base64-encoded, for the generated key file.
    pub fn generate_base64() -> SecretString {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        SecretString::from(STANDARD.encode(key))
    }

    fn key_from_bytes(bytes: &[u8]) -> Option<Key> {
        if bytes.len() != KEY_LEN {
            return None;
        }
        let digest = Sha256::new_with_prefix(b"calsync key id\0")
            .chain_update(bytes)
            .finalize();
        let id: String = digest
            .iter()
            .take(KEY_ID_LEN / 2)
            .map(|b| format!("{b:02x}"))
            .collect();
        let cipher = XChaCha20Poly1305::new_from_slice(bytes).ok()?;
        let derived = <HmacSha256 as Mac>::new_from_slice(bytes)
            .ok()?
            .chain_update(IDENTITY_LABEL)
            .finalize()
            .into_bytes();
        let identity = <HmacSha256 as Mac>::new_from_slice(&derived).ok()?;
        Some(Key {
            id,
            cipher,
            identity,
        })
    }

    /// Keyed digests of `text` for `purpose` (a fixed name such as
    /// `"ics feed"`), lower-case hex HMAC-SHA256, one per configured key and
    /// the first key's first: the first is the one to store, all of them are
    /// the ones to look for (a value stored before the keys were rotated).
    /// Without the keys nobody can tell which text a digest belongs to.
    pub fn keyed_ids(&self, purpose: &str, text: &str) -> Vec<String> {
        self.keys
            .iter()
            .map(|key| {
                let digest = key
                    .identity
                    .clone()
                    .chain_update(purpose.as_bytes())
                    .chain_update([0u8])
                    .chain_update(text.as_bytes())
                    .finalize()
                    .into_bytes();
                digest.iter().map(|b| format!("{b:02x}")).collect()
            })
            .collect()
    }

    /// The id of the key that seals.
    pub fn primary_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Whether `key_id` is one of the configured keys.
    pub fn knows(&self, key_id: &str) -> bool {
        self.keys.iter().any(|k| k.id == key_id)
    }

    /// Seals `plain` for the place `context` names, under the first key.
    pub fn seal(&self, plain: &SecretString, context: &SealContext) -> Result<String, SealError> {
        let key = &self.keys[0];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let payload = Payload {
            msg: plain.expose_secret().as_bytes(),
            aad: context.0.as_bytes(),
        };
        let ciphertext = key
            .cipher
            .encrypt(&nonce, payload)
            .map_err(|_| SealError::Unopenable)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        Ok(format!(
            "{VERSION}.{}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(blob)
        ))
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, sealed: &str, context: &SealContext) -> Result<SecretString, SealError> {
        let (key_id, blob) = split_sealed(sealed)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or_else(|| SealError::UnknownKey(key_id.to_owned()))?;
        let blob = URL_SAFE_NO_PAD
            .decode(blob)
            .map_err(|_| SealError::Malformed)?;
        if blob.len() < NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, ciphertext) = blob.split_at(NONCE_LEN);
        let payload = Payload {
            msg: ciphertext,
            aad: context.0.as_bytes(),
        };
        let plain = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), payload)
            .map_err(|_| SealError::Unopenable)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SealError::Malformed)
    }

    /// Opens and seals again under the first key; `None` when already sealed by it.
    pub fn reseal(&self, sealed: &str, context: &SealContext) -> Result<Option<String>, SealError> {
        let (key_id, _) = split_sealed(sealed)?;
        if key_id == self.primary_id() {
            return Ok(None);
        }
        let plain = self.open(sealed, context)?;
        self.seal(&plain, context).map(Some)
    }
}

/// The key id a sealed value names.
pub fn key_id_of(sealed: &str) -> Result<&str, SealError> {
    split_sealed(sealed).map(|(id, _)| id)
}

fn split_sealed(sealed: &str) -> Result<(&str, &str), SealError> {
    let mut parts = sealed.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(VERSION), Some(id), Some(blob)) if id.len() == KEY_ID_LEN => Ok((id, blob)),
        _ => Err(SealError::Malformed),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ring(keys: &[&SecretString]) -> Keyring {
        let list: Vec<&str> = keys.iter().map(|k| k.expose_secret()).collect();
        Keyring::from_base64_list(&SecretString::from(list.join(","))).unwrap()
    }

    #[test]
    fn opens_what_it_sealed_and_hides_the_plaintext() {
        let ring = ring(&[&Keyring::generate_base64()]);
        let ctx = SealContext::new("connections", "refresh_token", "1:google:abc");
        let sealed = ring
            .seal(&SecretString::from("1//refresh-secret"), &ctx)
            .unwrap();
        assert!(!sealed.contains("refresh-secret"));
        assert!(sealed.starts_with(&format!("v1.{}.", ring.primary_id())));
        assert_eq!(
            ring.open(&sealed, &ctx).unwrap().expose_secret(),
            "1//refresh-secret"
        );
    }

    #[test]
    fn a_value_moved_to_another_row_or_column_does_not_open() {
        let ring = ring(&[&Keyring::generate_base64()]);
        let ctx = SealContext::new("connections", "refresh_token", "1:google:alice");
        let sealed = ring.seal(&SecretString::from("token"), &ctx).unwrap();
        let other_row = SealContext::new("connections", "refresh_token", "2:google:bob");
        let other_column = SealContext::new("connections", "access_token", "1:google:alice");
        assert!(matches!(
            ring.open(&sealed, &other_row),
            Err(SealError::Unopenable)
        ));
        assert!(matches!(
            ring.open(&sealed, &other_column),
            Err(SealError::Unopenable)
        ));
    }

    #[test]
    fn rotation_reseals_under_the_first_key_and_old_key_can_go() {
        let (old, new) = (Keyring::generate_base64(), Keyring::generate_base64());
        let ctx = SealContext::new("t", "c", "r");
        let sealed_old = ring(&[&old]).seal(&SecretString::from("s"), &ctx).unwrap();
        let both = ring(&[&new, &old]);
        let resealed = both.reseal(&sealed_old, &ctx).unwrap().unwrap();
        assert_eq!(both.reseal(&resealed, &ctx).unwrap(), None);
        let only_new = ring(&[&new]);
        assert_eq!(only_new.open(&resealed, &ctx).unwrap().expose_secret(), "s");
        assert!(matches!(
            only_new.open(&sealed_old, &ctx),
            Err(SealError::UnknownKey(_))
        ));
    }

    #[test]
    fn keyed_ids_are_stable_per_key_and_tell_nothing_without_it() {
        let (old, new) = (Keyring::generate_base64(), Keyring::generate_base64());
        let url = "https://example.com/private-abc/basic.ics";
        let one = ring(&[&old]).keyed_ids("ics feed", url);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].len(), 64);
        assert!(one[0].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(ring(&[&old]).keyed_ids("ics feed", url), one, "stable");
        let unsalted: String = Sha256::digest(url.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(one[0], unsalted);
        assert_ne!(ring(&[&old]).keyed_ids("other purpose", url), one);
        assert_ne!(ring(&[&old]).keyed_ids("ics feed", "https://x/"), one);
        // After a rotation the old key's digest is still among those to look for.
        let both = ring(&[&new, &old]).keyed_ids("ics feed", url);
        assert_eq!(both.len(), 2);
        assert_eq!(both[1], one[0]);
        assert_ne!(both[0], one[0]);
    }

    #[test]
    fn bad_keys_are_refused_with_their_position() {
        let good = Keyring::generate_base64();
        let list = SecretString::from(format!("{},c2hvcnQ=", good.expose_secret()));
        assert!(matches!(
            Keyring::from_base64_list(&list),
            Err(SealError::BadKey { index: 2 })
        ));
        assert!(matches!(
            Keyring::from_base64_list(&SecretString::from(" , ")),
            Err(SealError::NoKeys)
        ));
    }

    #[test]
    fn tampered_values_are_refused() {
        let ring = ring(&[&Keyring::generate_base64()]);
        let ctx = SealContext::new("t", "c", "r");
        let sealed = ring.seal(&SecretString::from("s"), &ctx).unwrap();
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(ring.open(&tampered, &ctx).is_err());
        assert!(matches!(
            ring.open("garbage", &ctx),
            Err(SealError::Malformed)
        ));
    }
}
