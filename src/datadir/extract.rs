//! Unpacks a tar archive of a data directory (plain, gzip or zstd; a `datadir backup` archive or
//! an old `tar czf` of `/var/lib/kafka/data`) into a scratch directory for
//! `restore --from-datadir`, refusing any entry that could write outside it or fill the scratch
//! disk, and finds the data directory inside (archives may hold it under any path prefix).
//! [`hostile_entry`] is the rule `datadir restore` applies too.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use super::inspect::parse_partition_dir;
use super::tar_guard::TarGuard;
use super::walk::{is_gzip, is_tar, is_zstd};
use super::DatadirError;

/// Unpacks `archive` below `into` and returns the data directory found inside.
pub fn extract_archive(archive: &Path, into: &Path) -> Result<PathBuf, DatadirError> {
    let io_err = |source| DatadirError::Io {
        path: archive.to_path_buf(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 20, File::open(archive).map_err(io_err)?);
    let head = reader.fill_buf().map_err(io_err)?;
    if is_gzip(head) {
        unpack(flate2::bufread::MultiGzDecoder::new(reader), into)?;
    } else if is_zstd(head) {
        unpack(
            zstd::stream::read::Decoder::with_buffer(reader).map_err(io_err)?,
            into,
        )?;
    } else if is_tar(head) {
        unpack(reader, into)?;
    } else {
        return Err(DatadirError::NotADataDir {
            path: archive.to_path_buf(),
        });
    }
    find_data_dir(into).ok_or_else(|| DatadirError::NoKafkaFiles {
        source_name: archive.display().to_string(),
    })
}

fn unpack(reader: impl Read, into: &Path) -> Result<(), DatadirError> {
    let tar_err = |entry: &str, source| DatadirError::Tar {
        entry: entry.to_string(),
        source,
    };
    let refuse = |entry: &str, why: &str| {
        tar_err(
            entry,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{why}; refusing to unpack this archive"),
            ),
        )
    };
    std::fs::create_dir_all(into).map_err(|source| DatadirError::Io {
        path: into.to_path_buf(),
        source,
    })?;
    let mut archive = tar::Archive::new(TarGuard::new(reader));
    let mut unpacked_bytes = 0u64;
    for entry in archive.entries().map_err(|e| tar_err("(first entry)", e))? {
        let mut entry = entry.map_err(|e| tar_err("(next entry)", e))?;
        let path = entry
            .path()
            .map_err(|e| tar_err("(entry path)", e))?
            .into_owned();
        let shown = path.display().to_string();
        if let Some(why) = hostile_entry(&path, entry.header().entry_type()) {
            return Err(refuse(&shown, why));
        }
        // What the tar header says is what `unpack_in` writes: files only (links, devices and
        // sparse entries are refused above), so the scratch disk is checked before each one.
        let space = ScratchSpace::of(into).map_err(|source| DatadirError::Io {
            path: into.to_path_buf(),
            source,
        })?;
        space
            .check(entry.size())
            .map_err(|short| DatadirError::ScratchFull {
                into: into.to_path_buf(),
                entry: shown.clone(),
                entry_bytes: entry.size(),
                unpacked_bytes,
                available_bytes: short.available,
                reserve_bytes: short.reserve,
            })?;
        unpacked_bytes = unpacked_bytes.saturating_add(entry.size());
        let inside = entry.unpack_in(into).map_err(|e| tar_err(&shown, e))?;
        if !inside {
            return Err(refuse(
                &shown,
                "the entry would land outside the target directory",
            ));
        }
    }
    Ok(())
}

/// Free space, in bytes and files, on the filesystem being unpacked into.
#[derive(Debug, Clone, Copy)]
struct ScratchSpace {
    available_bytes: u64,
    total_bytes: u64,
    available_files: u64,
}

/// An entry that does not fit: what is free, and what must stay free.
#[derive(Debug, PartialEq)]
struct TooLittleSpace {
    available: u64,
    reserve: u64,
}

/// Left free on the scratch filesystem after every entry: 1 GiB, or a twentieth of a smaller
/// filesystem, so that a tarball that is larger than the disk (or a compression bomb) fails
/// before the disk it shares with everything else on the node is full.
const SCRATCH_RESERVE_BYTES: u64 = 1 << 30;
/// Files (inodes) left free the same way.
const SCRATCH_RESERVE_FILES: u64 = 1024;

impl ScratchSpace {
    fn of(dir: &Path) -> std::io::Result<ScratchSpace> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        // SAFETY: `statvfs` only writes the struct it is given, and `c_path` is NUL-terminated.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fragment = stat.f_frsize as u64;
        Ok(ScratchSpace {
            available_bytes: (stat.f_bavail as u64).saturating_mul(fragment),
            total_bytes: (stat.f_blocks as u64).saturating_mul(fragment),
            available_files: stat.f_favail as u64,
        })
    }

    /// Whether an entry of `entry_bytes` can be written leaving the reserve free. A filesystem
    /// that reports no inode count (0 files free of 0, as some do) is not held to the file reserve.
    fn check(&self, entry_bytes: u64) -> Result<(), TooLittleSpace> {
        let reserve = SCRATCH_RESERVE_BYTES.min(self.total_bytes / 20);
        let short = TooLittleSpace {
            available: self.available_bytes,
            reserve,
        };
        if entry_bytes.saturating_add(reserve) > self.available_bytes {
            return Err(short);
        }
        if self.available_files != 0 && self.available_files <= SCRATCH_RESERVE_FILES {
            return Err(short);
        }
        Ok(())
    }
}

/// Why a tar entry must not be unpacked into a data directory, or `None` when it is safe:
/// absolute paths, `..` and anything but files and directories (links, devices) are refused.
pub(crate) fn hostile_entry(path: &Path, kind: tar::EntryType) -> Option<&'static str> {
    if path
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Some("the path is absolute or climbs out with `..`");
    }
    if !(kind.is_file() || kind.is_dir()) {
        return Some(
            "a Kafka data directory holds only files and directories, this entry is a link or a device",
        );
    }
    None
}

/// The shallowest directory holding `meta.properties` or `<topic>-<partition>` directories.
fn find_data_dir(root: &Path) -> Option<PathBuf> {
    let mut level = vec![root.to_path_buf()];
    while !level.is_empty() {
        let mut next = Vec::new();
        for dir in level {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&dir)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            children.sort();
            let is_data_dir = children.iter().any(|child| {
                let name = child
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                name == "meta.properties" || (child.is_dir() && parse_partition_dir(name).is_some())
            });
            if is_data_dir {
                return Some(dir);
            }
            next.extend(children.into_iter().filter(|c| c.is_dir()));
        }
        level = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::tar_guard::{build, TarLimitError};
    use super::*;

    #[test]
    fn an_oversized_tar_extension_header_is_refused_before_unpacking() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("data.tar");
        std::fs::write(&archive, build::oversized_pax()).unwrap();
        let into = dir.path().join("out");
        let err = extract_archive(&archive, &into).unwrap_err();
        let DatadirError::Tar { source, .. } = &err else {
            panic!("{err}");
        };
        assert!(TarLimitError::of(source).is_some(), "{err}");
        assert!(!into.join("meta.properties").exists());
    }

    #[test]
    fn an_entry_larger_than_the_scratch_disk_is_refused_before_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("data.tar");
        // A header that announces an exabyte (what a compression bomb unpacks to) and then
        // a few real bytes: nothing of it may be written.
        let mut builder = tar::Builder::new(Vec::new());
        let mut meta = tar::Header::new_gnu();
        meta.set_size(4);
        meta.set_mode(0o644);
        meta.set_cksum();
        builder
            .append_data(&mut meta, "data/meta.properties", &b"x=1\n"[..])
            .unwrap();
        let mut bomb = tar::Header::new_gnu();
        bomb.set_size(1 << 60);
        bomb.set_mode(0o644);
        bomb.set_path("data/orders-0/00000000000000000000.log")
            .unwrap();
        bomb.set_cksum();
        let mut bytes = builder.into_inner().unwrap();
        let end = bytes.len() - 1024; // drop the end-of-archive blocks
        bytes.truncate(end);
        bytes.extend_from_slice(bomb.as_bytes());
        bytes.extend_from_slice(&[0u8; 4096]);
        std::fs::write(&archive, bytes).unwrap();

        let into = dir.path().join("out");
        let err = extract_archive(&archive, &into).unwrap_err();
        let DatadirError::ScratchFull {
            entry,
            entry_bytes,
            unpacked_bytes,
            ..
        } = &err
        else {
            panic!("{err}");
        };
        assert_eq!(entry, "data/orders-0/00000000000000000000.log");
        assert_eq!(*entry_bytes, 1 << 60);
        assert_eq!(*unpacked_bytes, 4);
        assert!(err.to_string().contains("TMPDIR"), "{err}");
        assert!(!into.join("data/orders-0").exists());
    }

    #[test]
    fn the_scratch_reserve_is_a_gibibyte_or_a_twentieth_of_a_small_disk() {
        let big = ScratchSpace {
            available_bytes: 10 << 30,
            total_bytes: 100 << 30,
            available_files: 1 << 20,
        };
        assert_eq!(big.check(9 << 30), Ok(()));
        assert_eq!(
            big.check((9 << 30) + 1),
            Err(TooLittleSpace {
                available: 10 << 30,
                reserve: 1 << 30
            })
        );
        let small = ScratchSpace {
            available_bytes: 100 << 20,
            total_bytes: 200 << 20,
            available_files: 0,
        };
        assert_eq!(small.check(90 << 20), Ok(()));
        assert!(small.check((90 << 20) + 1).is_err());
        let no_inodes = ScratchSpace {
            available_files: 10,
            ..big
        };
        assert!(no_inodes.check(0).is_err());
    }
}
