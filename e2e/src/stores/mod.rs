//! The backup stores of the e2e cluster, as a user sees them: object stores that speak the
//! real APIs (Google Cloud Storage's JSON API and S3's, both started by `e2e/cluster up` on the
//! real node's address) and a directory of this machine (a `volume` location's hostPath on the
//! real node). Each lists what it holds, so a test can tell which backups are really there.

pub mod gcs;
pub mod s3;

use std::path::Path;

use anyhow::{Context, Result};

/// One object of a store: its name (a path under the bucket or directory) and size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub name: String,
    pub size: u64,
}

/// The backups under `dir` (`<root>/<keyspace>/<shard>/`) that have a MANIFEST, which Vitess
/// writes last: name of each and the bytes stored under it, oldest first.
pub fn complete_backups(objects: &[StoredObject], dir: &str) -> Vec<(String, u64)> {
    let mut backups: Vec<(String, u64)> = Vec::new();
    for object in objects {
        let Some(rest) = object.name.strip_prefix(dir) else {
            continue;
        };
        let Some((backup, _file)) = rest.split_once('/') else {
            continue;
        };
        match backups.last_mut() {
            Some((name, size)) if name == backup => *size += object.size,
            _ => backups.push((backup.to_string(), object.size)),
        }
    }
    backups.retain(|(name, _)| {
        objects
            .iter()
            .any(|o| o.name == format!("{dir}{name}/MANIFEST"))
    });
    backups
}

/// Every file under `root` (a `volume` location's directory), named by its path below `root`,
/// in name order.
pub fn list_directory(root: &Path) -> Result<Vec<StoredObject>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<StoredObject>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let entry = entry?;
            let path = entry.path();
            let meta = entry.metadata()?;
            if meta.is_dir() {
                walk(root, &path, out)?;
            } else {
                let name = path.strip_prefix(root)?.to_string_lossy().into_owned();
                out.push(StoredObject {
                    name,
                    size: meta.len(),
                });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if root.is_dir() {
        walk(root, root, &mut out)?;
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `text` with every byte outside the URL-safe set as `%XX` (object prefixes hold `/`).
pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str, size: u64) -> StoredObject {
        StoredObject {
            name: name.into(),
            size,
        }
    }

    #[test]
    fn only_backups_with_a_manifest_are_complete() {
        let dir = "e2e/example/commerce/-/";
        let objects = [
            object("e2e/example/commerce/-/2026-12-05.081800.zone1-1/0", 100),
            object(
                "e2e/example/commerce/-/2026-12-05.081800.zone1-1/MANIFEST",
                10,
            ),
            object("e2e/example/commerce/-/2026-12-05.090000.zone1-2/0", 7),
            object("e2e/example/other/-/x/MANIFEST", 1),
        ];
        assert_eq!(
            complete_backups(&objects, dir),
            vec![("2026-12-05.081800.zone1-1".to_string(), 110)]
        );
    }

    #[test]
    fn a_directory_lists_its_files_by_relative_path() {
        let root = std::env::temp_dir().join(format!("e2e-stores-{}", std::process::id()));
        std::fs::create_dir_all(root.join("example/commerce/-/b1")).unwrap();
        std::fs::write(root.join("example/commerce/-/b1/MANIFEST"), "{}").unwrap();
        let listed = list_directory(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(listed, vec![object("example/commerce/-/b1/MANIFEST", 2)]);
        assert!(list_directory(&root).unwrap().is_empty());
    }
}
