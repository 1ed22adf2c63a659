//! The sink's checkpoint: the last stream sequence whose output is durable, and
//! where that output ends.

use crate::durable;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Saved after every batch, once the batch's output is durable (files fsynced,
/// webhook answered 2xx). On restart the sink truncates its current file back
/// to `offset`, removes any later file, and resumes after `seq`: whatever was
/// written past the checkpoint is written again, exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Format version, `1`.
    pub version: u32,
    /// The last stream sequence written; `None` before the first event.
    pub seq: Option<u64>,
    /// The NDJSON file being written (a name in the output directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The length of `file` that holds only checkpointed events.
    #[serde(default)]
    pub offset: u64,
    /// The stream epoch `seq` belongs to (absent in older checkpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

impl Checkpoint {
    /// Reads a checkpoint; `Ok(None)` when there is none yet.
    pub fn load(path: &Path) -> std::io::Result<Option<Checkpoint>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes it atomically and durably (temp file, fsync, rename, fsync dir).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(self).expect("a checkpoint serializes");
        bytes.push(b'\n');
        durable::replace(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cp.json");
        assert_eq!(Checkpoint::load(&p).unwrap(), None);
        let cp = Checkpoint {
            version: 1,
            seq: Some(42),
            file: Some("events-1.ndjson".into()),
            offset: 900,
            epoch: Some("1872f0c3".into()),
        };
        cp.save(&p).unwrap();
        assert_eq!(Checkpoint::load(&p).unwrap(), Some(cp));
        std::fs::write(&p, "{").unwrap();
        assert!(Checkpoint::load(&p).is_err());
    }
}
