//! NDJSON output files, rotated by size and age, repaired on start from the
//! checkpoint.

use super::checkpoint::Checkpoint;
use super::SinkError;
use crate::durable;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How output files are named and rotated.
#[derive(Debug, Clone)]
pub struct FileSettings {
    /// The directory of the files (created if missing).
    pub dir: PathBuf,
    /// Files are `<prefix>-<first stream seq, 20 digits>.ndjson`, so that
    /// names sort in stream order.
    pub prefix: String,
    /// Start a new file before one would grow past this many bytes (a single
    /// event larger than this gets a file of its own).
    pub max_bytes: u64,
    /// Start a new file once the current one has been open this long.
    pub max_age: Option<Duration>,
}

struct Current {
    name: String,
    file: File,
    len: u64,
    opened: Instant,
}

/// The file being written.
pub(crate) struct Files {
    settings: FileSettings,
    current: Option<Current>,
}

impl Files {
    /// Opens the output as of `checkpoint`: its file is cut back to the
    /// checkpointed length and later files are removed (they hold only events
    /// past the checkpoint, which will be written again).
    pub(crate) fn open(
        settings: FileSettings,
        checkpoint: &Checkpoint,
    ) -> Result<Files, SinkError> {
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| SinkError::Io { what, source }
        };
        std::fs::create_dir_all(&settings.dir).map_err(io("creating the output directory"))?;
        let mut ours: Vec<String> = std::fs::read_dir(&settings.dir)
            .map_err(io("listing the output directory"))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| is_ours(&settings.prefix, n))
            .collect();
        ours.sort();
        let mut current = None;
        match &checkpoint.file {
            Some(name) => {
                for later in ours.iter().filter(|n| *n > name) {
                    tracing::info!(file = %later, "removing a file written past the checkpoint");
                    std::fs::remove_file(settings.dir.join(later))
                        .map_err(io("removing a file past the checkpoint"))?;
                }
                let path = settings.dir.join(name);
                let file = OpenOptions::new()
                    .write(true)
                    .create(checkpoint.offset == 0)
                    .truncate(false)
                    .open(&path)
                    .map_err(io("opening the checkpointed file"))?;
                let len = file
                    .metadata()
                    .map_err(io("reading the file length"))?
                    .len();
                if len < checkpoint.offset {
                    return Err(SinkError::Corrupt(format!(
                        "{} is {len} bytes, shorter than its checkpoint ({})",
                        path.display(),
                        checkpoint.offset
                    )));
                }
                if len > checkpoint.offset {
                    tracing::info!(file = %name, cut = len - checkpoint.offset, "cutting bytes written past the checkpoint");
                    file.set_len(checkpoint.offset)
                        .map_err(io("truncating to the checkpoint"))?;
                    file.sync_all().map_err(io("syncing the truncation"))?;
                }
                let mut file = file;
                std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(checkpoint.offset))
                    .map_err(io("seeking to the checkpoint"))?;
                current = Some(Current {
                    name: name.clone(),
                    file,
                    len: checkpoint.offset,
                    opened: Instant::now(),
                });
                durable::sync_dir(&settings.dir).map_err(io("syncing the output directory"))?;
            }
            None if checkpoint.seq.is_none() && !ours.is_empty() => {
                return Err(SinkError::Corrupt(format!(
                    "{} already holds sink files but there is no checkpoint; \
                     use an empty directory or restore the checkpoint",
                    settings.dir.display()
                )));
            }
            None => {}
        }
        Ok(Files { settings, current })
    }

    /// Appends one line per event (`(stream seq, json)`), rotating as needed,
    /// and makes it durable. Returns the file and its length.
    pub(crate) fn append(&mut self, lines: &[(u64, String)]) -> Result<(String, u64), SinkError> {
        let io = |what: &'static str| {
            move |source| SinkError::Io {
                what: what.to_owned(),
                source,
            }
        };
        for (seq, json) in lines {
            let need = json.len() as u64 + 1;
            let rotate = match &self.current {
                None => true,
                Some(c) => {
                    (c.len > 0 && c.len + need > self.settings.max_bytes)
                        || self
                            .settings
                            .max_age
                            .is_some_and(|age| c.len > 0 && c.opened.elapsed() >= age)
                }
            };
            if rotate {
                if let Some(old) = self.current.take() {
                    old.file.sync_all().map_err(io("syncing a finished file"))?;
                }
                let name = format!("{}-{seq:020}.ndjson", self.settings.prefix);
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(self.settings.dir.join(&name))
                    .map_err(io("creating an output file"))?;
                durable::sync_dir(&self.settings.dir)
                    .map_err(io("syncing the output directory"))?;
                tracing::info!(file = %name, "writing a new file");
                self.current = Some(Current {
                    name,
                    file,
                    len: 0,
                    opened: Instant::now(),
                });
            }
            let c = self.current.as_mut().expect("a current file");
            let mut line = Vec::with_capacity(json.len() + 1);
            line.extend_from_slice(json.as_bytes());
            line.push(b'\n');
            c.file.write_all(&line).map_err(io("writing an event"))?;
            c.len += need;
        }
        let c = self
            .current
            .as_ref()
            .ok_or_else(|| SinkError::Corrupt("append called with no events and no file".into()))?;
        c.file.sync_data().map_err(io("syncing events"))?;
        Ok((c.name.clone(), c.len))
    }
}

fn is_ours(prefix: &str, name: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.strip_suffix(".ndjson"))
        .is_some_and(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(dir: &std::path::Path, max_bytes: u64) -> FileSettings {
        FileSettings {
            dir: dir.to_owned(),
            prefix: "events".into(),
            max_bytes,
            max_age: None,
        }
    }

    fn lines(range: std::ops::RangeInclusive<u64>) -> Vec<(u64, String)> {
        range.map(|s| (s, format!("{{\"n\":{s:03}}}"))).collect()
    }

    fn names(dir: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        // Each line is 10 bytes: three fit in 30.
        let mut f = Files::open(settings(dir.path(), 30), &Checkpoint::default()).unwrap();
        let (name, len) = f.append(&lines(1..=7)).unwrap();
        assert_eq!(
            (name.as_str(), len),
            ("events-00000000000000000007.ndjson", 10)
        );
        assert_eq!(
            names(dir.path()),
            [
                "events-00000000000000000001.ndjson",
                "events-00000000000000000004.ndjson",
                "events-00000000000000000007.ndjson"
            ]
        );
        let first =
            std::fs::read_to_string(dir.path().join("events-00000000000000000001.ndjson")).unwrap();
        assert_eq!(first, "{\"n\":001}\n{\"n\":002}\n{\"n\":003}\n");
    }

    #[test]
    fn repairs_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = Files::open(settings(dir.path(), 30), &Checkpoint::default()).unwrap();
        let (name, len) = f.append(&lines(1..=2)).unwrap();
        let cp = Checkpoint {
            version: 1,
            seq: Some(2),
            file: Some(name),
            offset: len,
            epoch: None,
        };
        // Written after the checkpoint, then a crash: a torn line and a later file.
        f.append(&lines(3..=5)).unwrap();
        drop(f);
        let mut f = Files::open(settings(dir.path(), 30), &cp).unwrap();
        assert_eq!(names(dir.path()), ["events-00000000000000000001.ndjson"]);
        f.append(&lines(3..=4)).unwrap();
        let all: String = names(dir.path())
            .iter()
            .map(|n| std::fs::read_to_string(dir.path().join(n)).unwrap())
            .collect();
        let want: String = lines(1..=4).iter().map(|(_, l)| format!("{l}\n")).collect();
        assert_eq!(all, want);
    }

    #[test]
    fn refuses_foreign_files_without_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("events-00000000000000000001.ndjson"), "x\n").unwrap();
        assert!(matches!(
            Files::open(settings(dir.path(), 30), &Checkpoint::default()),
            Err(SinkError::Corrupt(_))
        ));
    }
}
