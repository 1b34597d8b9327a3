//! Local locations only: listing and removing a backup's directory without ever following a
//! symbolic link, so nothing outside the location is listed as its own or deleted (object
//! stores have no links; object_store's local listing follows them).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::objects::ListedObject;
use super::StoreError;

/// Every regular file and link below `root/prefix` (a directory prefix ending in `/`, or
/// empty), never descending into a linked directory; links are listed with size 0. Keys
/// are relative to `root` with `/` separators. A missing directory lists as empty.
pub(super) fn list_no_follow(root: &Path, prefix: &str) -> io::Result<Vec<ListedObject>> {
    let mut found = Vec::new();
    let start = root.join(prefix);
    match fs::symlink_metadata(&start) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(err) => return Err(err),
        Ok(meta) if !meta.is_dir() => return Ok(found),
        Ok(_) => {}
    }
    if linked_component(root, prefix).is_some() {
        return Ok(found);
    }
    let mut pending = vec![start];
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        for entry in entries {
            let entry = entry?;
            // `file_type` and `symlink_metadata` describe the entry itself, not a link's target.
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
                continue;
            }
            // object_store stages writes as `name#N`: not objects (its own listing skips
            // them too); they go with their directory when a backup is removed.
            let Some(key) = key_of(root, &path).filter(|key| !is_staging(key)) else {
                continue;
            };
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                // Renamed or removed since the directory was read.
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            found.push(ListedObject {
                key: super::objects::logical_key(&key),
                size: if kind.is_symlink() { 0 } else { meta.len() },
                last_modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            });
        }
    }
    found.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(found)
}

/// Removes `root/prefix` (a backup's directory) and everything in it, without following
/// links: a linked file or directory inside loses only its link. When the backup's
/// directory is itself a link, only the link goes. A link higher up (`backups/` itself)
/// is refused: removing through it would delete outside the location.
pub(super) fn remove_dir_no_follow(root: &Path, prefix: &str) -> Result<(), StoreError> {
    let dir = root.join(prefix.trim_end_matches('/'));
    let shown = || dir.display().to_string();
    if let Some(linked) = linked_component(root, prefix) {
        if linked != dir {
            return Err(StoreError::UnsafeLocalPath {
                path: linked.display().to_string(),
                reason: format!(
                    "it is a symbolic link, and {} lies behind it",
                    dir.display()
                ),
            });
        }
        return fs::remove_file(&dir).map_err(|source| StoreError::RemoveDir {
            path: shown(),
            source,
        });
    }
    // std's remove_dir_all does not follow symbolic links (it removes the link itself).
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StoreError::RemoveDir {
            path: shown(),
            source,
        }),
    }
}

/// The first component of `prefix` below `root` that is a symbolic link, if any.
fn linked_component(root: &Path, prefix: &str) -> Option<PathBuf> {
    let mut path = root.to_path_buf();
    for part in prefix.split('/').filter(|p| !p.is_empty()) {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => return Some(path),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

fn is_staging(key: &str) -> bool {
    key.rsplit_once('#')
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn key_of(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = relative.iter().map(|part| part.to_str()).collect();
    Some(parts?.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_are_listed_and_removed_but_never_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"keep me").unwrap();
        let backup = root.path().join("backups/b1");
        std::fs::create_dir_all(backup.join("segments")).unwrap();
        std::fs::write(backup.join("segments/s1"), b"12345").unwrap();
        std::fs::write(backup.join("segments/s2#3"), b"staged").unwrap();
        symlink(outside.path(), backup.join("segments/evil")).unwrap();
        symlink(outside.path().join("precious"), backup.join("file-link")).unwrap();

        let listed = list_no_follow(root.path(), "backups/b1/").unwrap();
        let keys: Vec<(&str, u64)> = listed.iter().map(|o| (o.key.as_str(), o.size)).collect();
        assert_eq!(
            keys,
            vec![
                ("backups/b1/file-link", 0),
                ("backups/b1/segments/evil", 0),
                ("backups/b1/segments/s1", 5)
            ]
        );
        remove_dir_no_follow(root.path(), "backups/b1/").unwrap();
        assert!(!backup.exists());
        assert_eq!(
            std::fs::read(outside.path().join("precious")).unwrap(),
            b"keep me"
        );
    }

    #[test]
    fn a_linked_backup_directory_loses_only_its_link() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"x").unwrap();
        std::fs::create_dir_all(root.path().join("backups")).unwrap();
        symlink(outside.path(), root.path().join("backups/b1")).unwrap();
        assert!(list_no_follow(root.path(), "backups/b1/")
            .unwrap()
            .is_empty());
        remove_dir_no_follow(root.path(), "backups/b1/").unwrap();
        assert!(!root.path().join("backups/b1").exists());
        assert!(outside.path().join("precious").exists());
    }

    #[test]
    fn a_linked_parent_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(outside.path().join("b1")).unwrap();
        std::fs::write(outside.path().join("b1/precious"), b"x").unwrap();
        symlink(outside.path(), root.path().join("backups")).unwrap();
        let err = remove_dir_no_follow(root.path(), "backups/b1/").unwrap_err();
        assert!(matches!(err, StoreError::UnsafeLocalPath { .. }), "{err}");
        assert!(outside.path().join("b1/precious").exists());
    }
}
