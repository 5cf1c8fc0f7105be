//! Encryption at rest of everything secret the store holds.
//!
//! A subscription's spec (callback passwords, bearer tokens, api-key
//! values, signing secrets, and every other field with them) is sealed with
//! XChaCha20-Poly1305 before it is written. The associated data binds a
//! ciphertext to its row (tenant and id), so a sealed spec copied onto
//! another row does not open. Each value names the key that sealed it,
//! `sb1:<key id>:<base64(nonce ‖ ciphertext)>`: the first configured key
//! seals, every configured key opens, so keys can be rotated.

use std::fmt;

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use switchboard_core::Error;

const PREFIX: &str = "sb1";
const NONCE_LEN: usize = 24;

/// One data-encryption key.
#[derive(Clone)]
pub struct SecretKey {
    id: String,
    key: [u8; 32],
}

impl SecretKey {
    /// A key from its id and base64 text (32 bytes once decoded).
    pub fn from_base64(id: &str, b64: &str) -> Result<Self, String> {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("id: letters, digits, `-` and `_` only".into());
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| "key: not base64".to_owned())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "key: must decode to exactly 32 bytes".to_owned())?;
        Ok(Self {
            id: id.to_owned(),
            key,
        })
    }

    /// A fresh random key (demo mode, tests), as (key, base64 text).
    pub fn generate(id: &str) -> (Self, String) {
        let key: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
        let text = base64::engine::general_purpose::STANDARD.encode(key);
        (
            Self {
                id: id.to_owned(),
                key,
            },
            text,
        )
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}, ***)", self.id)
    }
}

/// The configured keys; the first seals.
#[derive(Clone, Debug)]
pub struct Cipher {
    keys: Vec<SecretKey>,
}

impl Cipher {
    /// At least one key; ids must be unique.
    pub fn new(keys: Vec<SecretKey>) -> Result<Self, String> {
        if keys.is_empty() {
            return Err("at least one key is required".into());
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.id == k.id) {
                return Err(format!("key id `{}` is used twice", k.id));
            }
        }
        Ok(Self { keys })
    }

    /// The id of the sealing key.
    pub fn current_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Seals `plaintext` for the row named by `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, Error> {
        let key = &self.keys[0];
        let aead = XChaCha20Poly1305::new(&Key::from(key.key));
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ct = aead
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| Error::Internal("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(format!(
            "{PREFIX}:{}:{}",
            key.id,
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(out)
        ))
    }

    /// The key id a sealed value names, if it is one.
    pub fn key_id_of(sealed: &str) -> Option<&str> {
        let mut parts = sealed.splitn(3, ':');
        (parts.next() == Some(PREFIX))
            .then(|| parts.next())
            .flatten()
    }

    /// Opens a value sealed by any configured key for the row `aad`.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, Error> {
        let mut parts = sealed.splitn(3, ':');
        let (Some(PREFIX), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::Internal("a stored secret is not sealed".into()));
        };
        let key = self.keys.iter().find(|k| k.id == id).ok_or_else(|| {
            Error::Internal(format!(
                "a stored secret is sealed with key `{id}`, which is not configured under [secrets] keys"
            ))
        })?;
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(body)
            .map_err(|_| Error::Internal("a sealed secret is corrupt".into()))?;
        if raw.len() < NONCE_LEN {
            return Err(Error::Internal("a sealed secret is corrupt".into()));
        }
        let (nonce, ct) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| Error::Internal("a sealed secret is corrupt".into()))?;
        XChaCha20Poly1305::new(&Key::from(key.key))
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad })
            .map_err(|_| {
                Error::Internal("a sealed secret does not open: wrong key or tampered row".into())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher(ids: &[&str]) -> Cipher {
        Cipher::new(ids.iter().map(|id| SecretKey::generate(id).0).collect()).unwrap()
    }

    #[test]
    fn seals_and_opens_bound_to_the_row() {
        let c = cipher(&["k1"]);
        let sealed = c.seal(b"hunter2", b"t\0sub_1").unwrap();
        assert!(sealed.starts_with("sb1:k1:"));
        assert!(!sealed.contains("hunter2"));
        assert_eq!(c.open(&sealed, b"t\0sub_1").unwrap(), b"hunter2");
        assert!(c.open(&sealed, b"t\0sub_2").is_err(), "another row's aad");
        assert_ne!(
            sealed,
            c.seal(b"hunter2", b"t\0sub_1").unwrap(),
            "random nonces"
        );
    }

    #[test]
    fn old_keys_open_and_the_first_seals() {
        let old = SecretKey::generate("old").0;
        let new = SecretKey::generate("new").0;
        let before = Cipher::new(vec![old.clone()]).unwrap();
        let sealed = before.seal(b"x", b"a").unwrap();
        let rotated = Cipher::new(vec![new.clone(), old]).unwrap();
        assert_eq!(rotated.open(&sealed, b"a").unwrap(), b"x");
        assert_eq!(
            Cipher::key_id_of(&rotated.seal(b"x", b"a").unwrap()),
            Some("new")
        );
        let only_new = Cipher::new(vec![new]).unwrap();
        assert!(
            only_new
                .open(&sealed, b"a")
                .unwrap_err()
                .to_string()
                .contains("`old`")
        );
    }

    #[test]
    fn keys_are_validated_and_never_printed() {
        assert!(SecretKey::from_base64("k", "AAAA").is_err());
        assert!(SecretKey::from_base64("bad id", &"A".repeat(44)).is_err());
        let (k, text) = SecretKey::generate("k1");
        assert!(SecretKey::from_base64("k1", &text).is_ok());
        assert!(!format!("{k:?}").contains(&text));
        assert!(Cipher::new(vec![k.clone(), k]).is_err());
        let c = cipher(&["a"]);
        let mut sealed = c.seal(b"x", b"r").unwrap();
        sealed.replace_range(sealed.len() - 2.., "AA");
        assert!(c.open(&sealed, b"r").is_err(), "tampering is detected");
    }
}
