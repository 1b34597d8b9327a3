//! Client-side encryption of segment objects: the key (parsed from a key file, known by its
//! key id, with its HKDF subkeys), the manifest's description of it, and the object envelope
//! (`KSNAPEN2`: AES-256-GCM under the object subkey, a random nonce per object, the object
//! key as associated data; `KSNAPEN1`, under the key itself, is still read). Streamed objects
//! (data-dir archives) use the stream subkey in `stream_encryption`. Specified in
//! docs/FORMAT.md.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::ArchiveError;

/// The first bytes of every encrypted object written now: the envelope under the object
/// subkey (HKDF-SHA-256 of the key, [`OBJECT_KEY_LABEL`]).
pub(crate) const ENCRYPTED_MAGIC: &[u8; 8] = b"KSNAPEN2";
/// The first bytes of an object kafkasnap 0.1 encrypted under the key itself; still read.
pub(crate) const ENCRYPTED_MAGIC_V1: &[u8; 8] = b"KSNAPEN1";
/// The HKDF salt of the subkeys that encrypt (per-purpose labels below; the manifest seal
/// uses a random salt per backup, `manifest_seal`).
const ENCRYPTION_SALT: &[u8] = b"kafkasnap encryption subkeys";
/// HKDF label of the subkey that encrypts objects (`KSNAPEN2`).
const OBJECT_KEY_LABEL: &[u8] = b"kafkasnap object aes-256-gcm v2";
/// HKDF label of the subkey that encrypts streams (`KSNAPES2`, `stream_encryption`).
const STREAM_KEY_LABEL: &[u8] = b"kafkasnap stream aes-256-gcm v2";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes an encrypted object has on top of its plaintext: magic, nonce and tag.
pub(crate) const ENVELOPE_OVERHEAD: usize = ENCRYPTED_MAGIC.len() + NONCE_LEN + TAG_LEN;

/// How to make a key, repeated in every refusal of a key file.
const HOW_TO_MAKE_A_KEY: &str =
    "make one with `head -c 32 /dev/urandom > backup.key` (or `openssl rand -hex 32 > backup.key`)";

/// The cipher a backup's segments are encrypted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cipher {
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cipher::Aes256Gcm => "aes-256-gcm",
        })
    }
}

/// The manifest's `encryption` field: every segment object of the backup is encrypted with
/// `cipher` under the key whose key id is `key_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    pub cipher: Cipher,
    /// First 16 lowercase hex digits of the SHA-256 of the 32 key bytes.
    pub key_id: String,
}

/// How the key given for a backup stands to the `encryption` its manifest records. A backup,
/// and with it an incremental chain, is encrypted throughout or not at all, under one key: a
/// manifest names one key for all the segments it lists, its parent's included. So the only
/// keys that fit are none for a plaintext backup and that very key (by key id) for an
/// encrypted one; reading, continuing a chain and authenticating a manifest all ask this.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyFit<'a> {
    /// Plaintext, and no key given.
    Plaintext,
    /// Encrypted under the given key.
    SameKey(&'a EncryptionKey),
    /// Encrypted, and no key given.
    KeyMissing(&'a Encryption),
    /// Encrypted under another key than the given one.
    OtherKey {
        recorded: &'a Encryption,
        given: &'a EncryptionKey,
    },
    /// Plaintext, and a key given.
    NotEncrypted,
}

impl KeyFit<'_> {
    /// How `given` fits a backup whose manifest records `encryption`.
    pub(crate) fn of<'a>(
        encryption: Option<&'a Encryption>,
        given: Option<&'a EncryptionKey>,
    ) -> KeyFit<'a> {
        match (encryption, given) {
            (None, None) => KeyFit::Plaintext,
            (None, Some(_)) => KeyFit::NotEncrypted,
            (Some(encryption), None) => KeyFit::KeyMissing(encryption),
            (Some(encryption), Some(key)) if encryption.key_id == key.id() => KeyFit::SameKey(key),
            (Some(recorded), Some(given)) => KeyFit::OtherKey { recorded, given },
        }
    }
}

/// Why a key file's contents are not a key. The contents themselves are never shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("it is empty; it must hold a 256-bit key: 32 random bytes, 64 hex digits or 44 base64 characters; {HOW_TO_MAKE_A_KEY}")]
    Empty,
    #[error("its 32 bytes are all printable text, which looks like a passphrase, not 32 random bytes; {HOW_TO_MAKE_A_KEY}")]
    LooksLikeText,
    #[error("it holds {len} bytes that are not a 256-bit key: it must hold 32 random bytes, or 64 hex digits, or 44 base64 characters (surrounding whitespace is ignored in the text forms); {HOW_TO_MAKE_A_KEY}")]
    NotAKey { len: usize },
}

/// Which cipher instance an envelope is under: a subkey (written now) or, for envelopes of
/// kafkasnap 0.1 (`KSNAPEN1`, `KSNAPES1`), the key itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CipherUse {
    /// The key itself (version 1 envelopes, read only).
    RawKey,
    /// The object subkey (`KSNAPEN2`).
    Objects,
    /// The stream subkey (`KSNAPES2`).
    Streams,
}

/// A 256-bit key ready to encrypt and decrypt segments. Cloning shares it; its bytes are
/// wiped from memory when the last clone is dropped, and `Debug` shows only the key id.
#[derive(Clone)]
pub struct EncryptionKey {
    /// The key itself: reads version 1 envelopes only.
    raw_cipher: Arc<Aes256Gcm>,
    /// Under the object subkey.
    object_cipher: Arc<Aes256Gcm>,
    /// Under the stream subkey.
    stream_cipher: Arc<Aes256Gcm>,
    /// The key bytes, kept only as the input of [`EncryptionKey::derive_subkey`].
    secret: Arc<Zeroizing<[u8; KEY_LEN]>>,
    id: String,
    /// The user accepts manifests of this key's backups that carry no seal because they were
    /// written before seals existed (format version 1; `--allow-unsealed`).
    unsealed_allowed: bool,
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncryptionKey(key id {})", self.id)
    }
}

impl EncryptionKey {
    /// Reads a key file's contents: exactly 32 bytes are the key itself (unless they are all
    /// printable text); otherwise, with surrounding ASCII whitespace removed, 64 hex digits
    /// (either case) or standard padded base64 of 32 bytes (44 characters).
    pub fn parse(contents: &[u8]) -> Result<EncryptionKey, KeyFileError> {
        if contents.len() == KEY_LEN {
            if contents
                .iter()
                .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
            {
                return Err(KeyFileError::LooksLikeText);
            }
            return Ok(EncryptionKey::from_bytes(
                contents.try_into().expect("32 bytes"),
            ));
        }
        let text = contents.trim_ascii();
        if text.is_empty() {
            return Err(KeyFileError::Empty);
        }
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if text.len() == 2 * KEY_LEN && hex::decode_to_slice(text, key.as_mut()).is_ok() {
            return Ok(EncryptionKey::from_bytes(&key));
        }
        if text.len() == 44 {
            // The decoder wants room for 33 bytes when given 44 characters.
            let mut decoded = Zeroizing::new([0u8; KEY_LEN + 1]);
            let engine = base64::engine::general_purpose::STANDARD;
            if engine.decode_slice(text, decoded.as_mut()) == Ok(KEY_LEN) {
                key.copy_from_slice(&decoded[..KEY_LEN]);
                return Ok(EncryptionKey::from_bytes(&key));
            }
        }
        Err(KeyFileError::NotAKey {
            len: contents.len(),
        })
    }

    fn from_bytes(bytes: &[u8; KEY_LEN]) -> EncryptionKey {
        let digest = Sha256::digest(bytes);
        let secret = Arc::new(Zeroizing::new(*bytes));
        let subkey_cipher = |label| {
            let subkey = derive(&secret, ENCRYPTION_SALT, label);
            let subkey: &[u8; KEY_LEN] = &subkey;
            Arc::new(Aes256Gcm::new(subkey.into()))
        };
        EncryptionKey {
            raw_cipher: Arc::new(Aes256Gcm::new(bytes.into())),
            object_cipher: subkey_cipher(OBJECT_KEY_LABEL),
            stream_cipher: subkey_cipher(STREAM_KEY_LABEL),
            secret,
            id: hex::encode(&digest[..8]),
            unsealed_allowed: false,
        }
    }

    /// The same key, with the user's word that manifests of format version 1 (written before
    /// manifests were sealed) may be read unauthenticated, with a warning. Without it they are
    /// refused: a sealed manifest rewritten as version 1 with its seal removed looks the same.
    pub fn allowing_unsealed_manifests(mut self) -> EncryptionKey {
        self.unsealed_allowed = true;
        self
    }

    /// Whether [`EncryptionKey::allowing_unsealed_manifests`] was asked for.
    pub(crate) fn allows_unsealed_manifests(&self) -> bool {
        self.unsealed_allowed
    }

    /// A 256-bit subkey for one purpose (`label`), derived with HKDF-SHA-256 from the key
    /// and `salt`: subkeys of different labels or salts are unrelated to each other.
    pub(super) fn derive_subkey(&self, salt: &[u8], label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        derive(&self.secret, salt, label)
    }

    /// The cipher instance for one use (the stream envelope picks by its magic).
    pub(super) fn aead(&self, usage: CipherUse) -> &Aes256Gcm {
        match usage {
            CipherUse::RawKey => &self.raw_cipher,
            CipherUse::Objects => &self.object_cipher,
            CipherUse::Streams => &self.stream_cipher,
        }
    }

    /// First 16 hex digits of the key's SHA-256: names the key without revealing it.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the manifest of a backup encrypted with this key says.
    pub fn describe(&self) -> Encryption {
        Encryption {
            cipher: Cipher::Aes256Gcm,
            key_id: self.id.clone(),
        }
    }

    /// Encrypts an object's bytes for storage under `object_key`, under the object subkey:
    /// `KSNAPEN2 | nonce (12 random bytes) | ciphertext | tag (16 bytes)`.
    pub(crate) fn encrypt(
        &self,
        object_key: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, ArchiveError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|source| ArchiveError::NoRandomness { source })?;
        let mut sealed = Vec::with_capacity(plaintext.len() + ENVELOPE_OVERHEAD);
        sealed.extend_from_slice(ENCRYPTED_MAGIC);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let body = &mut sealed[ENCRYPTED_MAGIC.len() + NONCE_LEN..];
        let tag = self
            .aead(CipherUse::Objects)
            .encrypt_inout_detached(
                &Nonce::from(nonce),
                &associated_data(ENCRYPTED_MAGIC, object_key),
                body.into(),
            )
            .map_err(|_| ArchiveError::EncryptionFailed {
                len: plaintext.len(),
            })?;
        sealed.extend_from_slice(&tag);
        Ok(sealed)
    }

    /// Checks and decrypts an object that [`EncryptionKey::encrypt`] made for `object_key`
    /// (or that kafkasnap 0.1 made under the key itself, `KSNAPEN1`).
    pub(crate) fn decrypt(&self, object_key: &str, stored: &[u8]) -> Result<Vec<u8>, ArchiveError> {
        let (magic, usage) = match stored.get(..ENCRYPTED_MAGIC.len()) {
            Some(magic) if magic == ENCRYPTED_MAGIC => (ENCRYPTED_MAGIC, CipherUse::Objects),
            Some(magic) if magic == ENCRYPTED_MAGIC_V1 => (ENCRYPTED_MAGIC_V1, CipherUse::RawKey),
            _ => return Err(ArchiveError::NotEncrypted),
        };
        if stored.len() < ENVELOPE_OVERHEAD {
            return Err(ArchiveError::CorruptSegment {
                position: stored.len(),
                what: format!(
                    "encrypted object of {} bytes is shorter than its {ENVELOPE_OVERHEAD}-byte envelope",
                    stored.len()
                ),
            });
        }
        let (header, rest) = stored.split_at(ENCRYPTED_MAGIC.len() + NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce: [u8; NONCE_LEN] = header[ENCRYPTED_MAGIC.len()..]
            .try_into()
            .expect("12 bytes");
        let tag: [u8; TAG_LEN] = tag.try_into().expect("16 bytes");
        let mut plaintext = ciphertext.to_vec();
        self.aead(usage)
            .decrypt_inout_detached(
                &Nonce::from(nonce),
                &associated_data(magic, object_key),
                plaintext.as_mut_slice().into(),
                &Tag::from(tag),
            )
            .map_err(|_| ArchiveError::DecryptionFailed)?;
        Ok(plaintext)
    }
}

/// HKDF-SHA-256 of `secret` with `salt`, expanded for `label` to 32 bytes.
fn derive(secret: &[u8; KEY_LEN], salt: &[u8], label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
    let mut subkey = Zeroizing::new([0u8; KEY_LEN]);
    hkdf::Hkdf::<Sha256>::new(Some(salt), secret)
        .expand(label, subkey.as_mut())
        .expect("32 bytes is a valid HKDF-SHA-256 output length");
    subkey
}

/// Binds a ciphertext to its object: the envelope's magic followed by the object key's
/// UTF-8 bytes.
fn associated_data(magic: &[u8; 8], object_key: &str) -> Vec<u8> {
    [magic.as_slice(), object_key.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const OBJECT: &str =
        "backups/20261125T020000Z-5be3a1/segments/t/0/00000000000000000000.kseg.zst";

    fn key() -> EncryptionKey {
        EncryptionKey::parse(KEY_HEX.as_bytes()).unwrap()
    }

    fn raw_key() -> [u8; 32] {
        hex::decode(KEY_HEX).unwrap().try_into().unwrap()
    }

    #[test]
    fn encrypts_and_decrypts_with_a_fresh_nonce_each_time() {
        let plaintext = b"some compressed segment bytes".repeat(100);
        let first = key().encrypt(OBJECT, &plaintext).unwrap();
        let second = key().encrypt(OBJECT, &plaintext).unwrap();
        assert_eq!(&first[..8], ENCRYPTED_MAGIC);
        assert_eq!(first.len(), plaintext.len() + ENVELOPE_OVERHEAD);
        assert_ne!(first[8..20], second[8..20], "nonces must differ");
        assert_ne!(first, second);
        assert!(
            !first
                .windows(29)
                .any(|w| w == b"some compressed segment bytes"),
            "plaintext visible in the ciphertext"
        );
        assert_eq!(key().decrypt(OBJECT, &first).unwrap(), plaintext);
        assert_eq!(key().decrypt(OBJECT, &second).unwrap(), plaintext);
        let empty = key().encrypt(OBJECT, b"").unwrap();
        assert_eq!(key().decrypt(OBJECT, &empty).unwrap(), b"");
    }

    #[test]
    fn any_flipped_byte_fails() {
        let sealed = key().encrypt(OBJECT, b"payload of a segment").unwrap();
        for position in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[position] ^= 0x01;
            assert!(
                key().decrypt(OBJECT, &tampered).is_err(),
                "flip at byte {position} went unnoticed"
            );
        }
        assert!(matches!(
            key().decrypt(OBJECT, &sealed[..ENVELOPE_OVERHEAD - 1]),
            Err(ArchiveError::CorruptSegment { .. })
        ));
    }

    #[test]
    fn another_key_fails() {
        let sealed = key().encrypt(OBJECT, b"payload").unwrap();
        let mut other = raw_key();
        other[31] ^= 0x80;
        let other = EncryptionKey::parse(&other).unwrap();
        assert_ne!(other.id(), key().id());
        assert!(matches!(
            other.decrypt(OBJECT, &sealed),
            Err(ArchiveError::DecryptionFailed)
        ));
    }

    #[test]
    fn a_ciphertext_is_bound_to_its_object_key() {
        let sealed = key().encrypt(OBJECT, b"payload").unwrap();
        let elsewhere = OBJECT.replace("/t/0/", "/t/1/");
        assert!(matches!(
            key().decrypt(&elsewhere, &sealed),
            Err(ArchiveError::DecryptionFailed)
        ));
    }

    /// A `KSNAPEN1` envelope as kafkasnap 0.1 made it: under the key itself.
    fn version_1_envelope(plaintext: &[u8]) -> Vec<u8> {
        let raw = Aes256Gcm::new(&raw_key().into());
        let nonce = [9u8; NONCE_LEN];
        let mut body = plaintext.to_vec();
        let tag = raw
            .encrypt_inout_detached(
                &Nonce::from(nonce),
                &associated_data(ENCRYPTED_MAGIC_V1, OBJECT),
                body.as_mut_slice().into(),
            )
            .unwrap();
        [ENCRYPTED_MAGIC_V1.as_slice(), &nonce, &body, &tag].concat()
    }

    #[test]
    fn objects_are_encrypted_under_a_subkey_and_version_1_ones_still_read() {
        let sealed = key().encrypt(OBJECT, b"payload").unwrap();
        assert_eq!(&sealed[..8], b"KSNAPEN2");
        // The key itself does not open a version 2 envelope, under either magic.
        let raw = Aes256Gcm::new(&raw_key().into());
        let (header, rest) = sealed.split_at(8 + NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        for magic in [ENCRYPTED_MAGIC, ENCRYPTED_MAGIC_V1] {
            let mut body = ciphertext.to_vec();
            let opened = raw.decrypt_inout_detached(
                &Nonce::from(<[u8; 12]>::try_from(&header[8..]).unwrap()),
                &associated_data(magic, OBJECT),
                body.as_mut_slice().into(),
                &Tag::from(<[u8; 16]>::try_from(tag).unwrap()),
            );
            assert!(opened.is_err(), "the raw key opened a subkey envelope");
        }
        let mut relabelled = sealed.clone();
        relabelled[..8].copy_from_slice(ENCRYPTED_MAGIC_V1);
        assert!(matches!(
            key().decrypt(OBJECT, &relabelled),
            Err(ArchiveError::DecryptionFailed)
        ));
        let old = version_1_envelope(b"written by 0.1");
        assert_eq!(key().decrypt(OBJECT, &old).unwrap(), b"written by 0.1");
        let mut old_relabelled = old.clone();
        old_relabelled[..8].copy_from_slice(ENCRYPTED_MAGIC);
        assert!(key().decrypt(OBJECT, &old_relabelled).is_err());
    }

    #[test]
    fn plaintext_objects_are_not_taken_for_encrypted_ones() {
        assert!(matches!(
            key().decrypt(OBJECT, b"\x28\xb5\x2f\xfd plain zstd"),
            Err(ArchiveError::NotEncrypted)
        ));
    }

    #[test]
    fn key_files_in_raw_hex_and_base64_name_the_same_key() {
        let raw = raw_key();
        let base64 = base64::engine::general_purpose::STANDARD.encode(raw);
        let forms: Vec<Vec<u8>> = vec![
            raw.to_vec(),
            KEY_HEX.as_bytes().to_vec(),
            format!("{}\n", KEY_HEX.to_uppercase()).into_bytes(),
            format!("  {base64}\r\n").into_bytes(),
        ];
        // The key id is the SHA-256 of the raw key bytes, cut to 16 hex digits.
        let expected = hex::encode(&Sha256::digest(raw)[..8]);
        for form in forms {
            let key = EncryptionKey::parse(&form).unwrap();
            assert_eq!(key.id(), expected);
            assert_eq!(key.describe().key_id, expected);
        }
        // What one key encrypted, the same key read from another form decrypts.
        let sealed = EncryptionKey::parse(&raw)
            .unwrap()
            .encrypt(OBJECT, b"x")
            .unwrap();
        assert_eq!(key().decrypt(OBJECT, &sealed).unwrap(), b"x");
    }

    #[test]
    fn anything_else_is_refused_without_showing_it() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "empty"),
            (b" \n".to_vec(), "empty"),
            (b"correct horse battery staple 123".to_vec(), "passphrase"),
            (vec![7u8; 31], "31 bytes"),
            (vec![7u8; 33], "33 bytes"),
            (KEY_HEX.as_bytes()[..62].to_vec(), "62 bytes"),
            (format!("{}zz", &KEY_HEX[..62]).into_bytes(), "64 bytes"),
            (
                base64::engine::general_purpose::STANDARD
                    .encode([1u8; 31])
                    .into_bytes(),
                "44 bytes",
            ),
            (b"hunter2".to_vec(), "7 bytes"),
        ];
        for (contents, expected) in cases {
            let err = EncryptionKey::parse(&contents).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
            assert!(err.contains("head -c 32 /dev/urandom"), "{err}");
            assert!(!err.contains("hunter2") && !err.contains("horse"), "{err}");
        }
    }

    #[test]
    fn debug_shows_only_the_key_id() {
        let shown = format!("{:?}", key());
        assert_eq!(shown, format!("EncryptionKey(key id {})", key().id()));
        assert!(!shown.contains(&KEY_HEX[..16]));
    }

    #[test]
    fn the_manifest_field_names_the_cipher() {
        let json = serde_json::to_value(key().describe()).unwrap();
        assert_eq!(json["cipher"], "aes-256-gcm");
        assert_eq!(json["key_id"].as_str().unwrap().len(), 16);
        assert!(serde_json::from_str::<Encryption>(
            r#"{"cipher": "rot13", "key_id": "0000000000000000"}"#
        )
        .is_err());
    }
}
