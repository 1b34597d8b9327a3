//! The seal of an encrypted backup's manifest: an HMAC-SHA-256 over the exact manifest bytes
//! and the backup id, under a key derived with HKDF-SHA-256 from the backup key and a random
//! per-manifest salt. Whoever can write to the location but lacks the key cannot alter,
//! move or forge a sealed manifest. A sharded run's part files and data-dir manifests are
//! sealed the same way, each under its own MAC input prefix. Specified in docs/FORMAT.md
//! ("Manifest seal").

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{ArchiveError, BackupId, EncryptionKey};

/// HKDF `info` of the manifest MAC key: a label no other use of the backup key shares.
const MAC_KEY_LABEL: &[u8] = b"kafkasnap manifest seal hmac-sha256 v1";
/// Prefix of a manifest's MAC input, so that a seal cannot be taken for a MAC of anything else.
const MAC_INPUT_PREFIX: &[u8] = b"kafkasnap manifest\0";
/// Prefix of a shard part file's MAC input: a part's seal never checks as a manifest's.
const PART_MAC_INPUT_PREFIX: &[u8] = b"kafkasnap shard part\0";
/// Prefix of a data-dir manifest's MAC input.
const DATADIR_MAC_INPUT_PREFIX: &[u8] = b"kafkasnap datadir manifest\0";
const SALT_LEN: usize = 32;
/// Seal files above this size are not seals (a real one is about 250 bytes).
pub(crate) const MAX_SEAL_BYTES: usize = 4096;

/// The seal object (`manifest.seal`) as stored: JSON naming the algorithms, the salt and
/// the tag, both in lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSeal {
    mac: String,
    kdf: String,
    salt: String,
    tag: String,
}

const MAC_NAME: &str = "hmac-sha256";
const KDF_NAME: &str = "hkdf-sha256";

/// Seals `manifest` (its exact bytes) as the manifest of backup `id`: the bytes of the
/// `manifest.seal` object to store next to it.
pub fn seal_manifest(
    key: &EncryptionKey,
    id: &BackupId,
    manifest: &[u8],
) -> Result<Vec<u8>, ArchiveError> {
    seal(key, MAC_INPUT_PREFIX, id, manifest)
}

/// Checks that `seal` (a `manifest.seal` object's bytes) seals `manifest` as backup `id`'s
/// manifest under `key`. The tag is compared in constant time.
pub fn check_manifest_seal(
    key: &EncryptionKey,
    id: &BackupId,
    manifest: &[u8],
    seal: &[u8],
) -> Result<(), ArchiveError> {
    check(key, MAC_INPUT_PREFIX, id, manifest, seal)
}

/// Seals a shard's part file (its exact bytes, which name the run, index and count) as
/// stored under backup `id`: the bytes of the part's `.seal` object.
pub(crate) fn seal_shard_part(
    key: &EncryptionKey,
    id: &BackupId,
    part: &[u8],
) -> Result<Vec<u8>, ArchiveError> {
    seal(key, PART_MAC_INPUT_PREFIX, id, part)
}

/// Checks a shard part file's seal, as [`check_manifest_seal`] does a manifest's.
pub(crate) fn check_shard_part_seal(
    key: &EncryptionKey,
    id: &BackupId,
    part: &[u8],
    seal: &[u8],
) -> Result<(), ArchiveError> {
    check(key, PART_MAC_INPUT_PREFIX, id, part, seal)
}

/// Seals a data-dir backup's manifest (its exact bytes) as data-dir backup `id`'s.
pub fn seal_datadir_manifest(
    key: &EncryptionKey,
    id: &BackupId,
    manifest: &[u8],
) -> Result<Vec<u8>, ArchiveError> {
    seal(key, DATADIR_MAC_INPUT_PREFIX, id, manifest)
}

/// Checks a data-dir manifest's seal, as [`check_manifest_seal`] does a logical one's.
pub(crate) fn check_datadir_manifest_seal(
    key: &EncryptionKey,
    id: &BackupId,
    manifest: &[u8],
    seal: &[u8],
) -> Result<(), ArchiveError> {
    check(key, DATADIR_MAC_INPUT_PREFIX, id, manifest, seal)
}

fn seal(
    key: &EncryptionKey,
    prefix: &[u8],
    id: &BackupId,
    bytes: &[u8],
) -> Result<Vec<u8>, ArchiveError> {
    let mut salt = [0u8; SALT_LEN];
    getrandom::fill(&mut salt).map_err(|source| ArchiveError::NoRandomness { source })?;
    let tag = mac(key, &salt, prefix, id, bytes).finalize().into_bytes();
    let stored = StoredSeal {
        mac: MAC_NAME.into(),
        kdf: KDF_NAME.into(),
        salt: hex::encode(salt),
        tag: hex::encode(tag),
    };
    Ok(serde_json::to_vec_pretty(&stored).expect("a seal always serializes"))
}

fn check(
    key: &EncryptionKey,
    prefix: &[u8],
    id: &BackupId,
    bytes: &[u8],
    seal: &[u8],
) -> Result<(), ArchiveError> {
    let unreadable = |what: String| ArchiveError::SealUnreadable { what };
    if seal.len() > MAX_SEAL_BYTES {
        return Err(unreadable(format!(
            "it is {} bytes, above the largest accepted ({MAX_SEAL_BYTES})",
            seal.len()
        )));
    }
    let stored: StoredSeal =
        serde_json::from_slice(seal).map_err(|err| unreadable(format!("not a seal: {err}")))?;
    if stored.mac != MAC_NAME || stored.kdf != KDF_NAME {
        return Err(unreadable(format!(
            "it names mac {:?} and kdf {:?}; this kafkasnap knows only {MAC_NAME} with {KDF_NAME}",
            stored.mac, stored.kdf
        )));
    }
    let salt = hex::decode(&stored.salt)
        .ok()
        .filter(|s| s.len() == SALT_LEN)
        .ok_or_else(|| unreadable(format!("its salt is not {SALT_LEN} bytes of hex")))?;
    let tag = hex::decode(&stored.tag)
        .ok()
        .filter(|t| t.len() == 32)
        .ok_or_else(|| unreadable("its tag is not 32 bytes of hex".into()))?;
    mac(key, &salt, prefix, id, bytes)
        .verify_slice(&tag)
        .map_err(|_| ArchiveError::SealMismatch)
}

fn mac(
    key: &EncryptionKey,
    salt: &[u8],
    prefix: &[u8],
    id: &BackupId,
    manifest: &[u8],
) -> Hmac<Sha256> {
    let mac_key = key.derive_subkey(salt, MAC_KEY_LABEL);
    let mut mac = Hmac::<Sha256>::new_from_slice(mac_key.as_ref()).expect("HMAC takes any key");
    mac.update(prefix);
    mac.update(&(id.as_str().len() as u64).to_be_bytes());
    mac.update(id.as_str().as_bytes());
    mac.update(manifest);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const OTHER_KEY_HEX: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn key(hex: &str) -> EncryptionKey {
        EncryptionKey::parse(hex.as_bytes()).unwrap()
    }

    fn id(s: &str) -> BackupId {
        BackupId::parse(s).unwrap()
    }

    const MANIFEST: &[u8] = br#"{"format_version": 2, "backup_id": "20261125T145443Z-3f9a1c"}"#;

    #[test]
    fn a_seal_checks_only_for_the_same_bytes_id_and_key() {
        let k = key(KEY_HEX);
        let backup = id("20261125T145443Z-3f9a1c");
        let seal = seal_manifest(&k, &backup, MANIFEST).unwrap();
        check_manifest_seal(&k, &backup, MANIFEST, &seal).unwrap();

        let mut altered = MANIFEST.to_vec();
        altered[20] ^= 1;
        let mismatch = |r: Result<(), ArchiveError>| matches!(r, Err(ArchiveError::SealMismatch));
        assert!(mismatch(check_manifest_seal(&k, &backup, &altered, &seal)));
        let moved = id("20261125T145443Z-3f9a1d");
        assert!(mismatch(check_manifest_seal(&k, &moved, MANIFEST, &seal)));
        let other = key(OTHER_KEY_HEX);
        assert!(mismatch(check_manifest_seal(
            &other, &backup, MANIFEST, &seal
        )));
        let mut longer = MANIFEST.to_vec();
        longer.push(b' ');
        assert!(mismatch(check_manifest_seal(&k, &backup, &longer, &seal)));
    }

    #[test]
    fn a_part_seal_is_not_a_manifest_seal() {
        let k = key(KEY_HEX);
        let backup = id("20261125T145443Z-3f9a1c");
        let part_seal = seal_shard_part(&k, &backup, MANIFEST).unwrap();
        check_shard_part_seal(&k, &backup, MANIFEST, &part_seal).unwrap();
        assert!(matches!(
            check_manifest_seal(&k, &backup, MANIFEST, &part_seal),
            Err(ArchiveError::SealMismatch)
        ));
        let manifest_seal = seal_manifest(&k, &backup, MANIFEST).unwrap();
        assert!(matches!(
            check_shard_part_seal(&k, &backup, MANIFEST, &manifest_seal),
            Err(ArchiveError::SealMismatch)
        ));
        // Nor does a logical manifest's seal check as a data-dir manifest's, or back.
        let datadir_seal = seal_datadir_manifest(&k, &backup, MANIFEST).unwrap();
        check_datadir_manifest_seal(&k, &backup, MANIFEST, &datadir_seal).unwrap();
        for (seal, check) in [
            (
                &manifest_seal,
                check_datadir_manifest_seal as fn(_, _, _, _) -> _,
            ),
            (&datadir_seal, check_manifest_seal),
            (&part_seal, check_datadir_manifest_seal),
        ] {
            assert!(matches!(
                check(&k, &backup, MANIFEST, seal),
                Err(ArchiveError::SealMismatch)
            ));
        }
    }

    #[test]
    fn each_seal_has_its_own_salt() {
        let k = key(KEY_HEX);
        let backup = id("20261125T145443Z-3f9a1c");
        let first = seal_manifest(&k, &backup, MANIFEST).unwrap();
        let second = seal_manifest(&k, &backup, MANIFEST).unwrap();
        assert_ne!(first, second);
        check_manifest_seal(&k, &backup, MANIFEST, &second).unwrap();
    }

    #[test]
    fn a_seal_with_a_swapped_salt_or_tag_does_not_check() {
        let k = key(KEY_HEX);
        let backup = id("20261125T145443Z-3f9a1c");
        let seal: StoredSeal =
            serde_json::from_slice(&seal_manifest(&k, &backup, MANIFEST).unwrap()).unwrap();
        let other: StoredSeal =
            serde_json::from_slice(&seal_manifest(&k, &backup, MANIFEST).unwrap()).unwrap();
        let swapped = StoredSeal {
            salt: other.salt,
            ..seal.clone()
        };
        let bytes = serde_json::to_vec(&swapped).unwrap();
        assert!(matches!(
            check_manifest_seal(&k, &backup, MANIFEST, &bytes),
            Err(ArchiveError::SealMismatch)
        ));
        for bad in [
            StoredSeal {
                tag: "00".into(),
                ..seal.clone()
            },
            StoredSeal {
                salt: "zz".into(),
                ..seal.clone()
            },
            StoredSeal {
                mac: "md5".into(),
                ..seal.clone()
            },
        ] {
            let bytes = serde_json::to_vec(&bad).unwrap();
            assert!(matches!(
                check_manifest_seal(&k, &backup, MANIFEST, &bytes),
                Err(ArchiveError::SealUnreadable { .. })
            ));
        }
        assert!(matches!(
            check_manifest_seal(&k, &backup, MANIFEST, b"not json"),
            Err(ArchiveError::SealUnreadable { .. })
        ));
        let huge = vec![b' '; MAX_SEAL_BYTES + 1];
        assert!(matches!(
            check_manifest_seal(&k, &backup, MANIFEST, &huge),
            Err(ArchiveError::SealUnreadable { .. })
        ));
    }
}
