//! The audit spool: where an allowed call's decision record becomes durable
//! before the call is forwarded, with one copy into a shared memory mapping
//! of a file on the request's own task: no round trip through the writer
//! task and the database, and no system call.
//!
//! Records are appended, one JSON line each, to numbered segment files in a
//! directory of their own. A segment's disk space is reserved in full when
//! it is created (`posix_fallocate`), so that a full disk refuses a new
//! segment (and with it the calls whose records would go there) instead of
//! failing a write into the mapping; a sealed segment is cut to what it
//! holds. The [`crate::AuditWriter`] then moves them into
//! the database in batches, as it does for every other record; a segment is
//! deleted once every record in it is committed there. On start, before the
//! writer runs, [`Store::replay_audit_spool`] inserts what a crash left in
//! the segments (skipping records already in the database) and deletes them.
//!
//! Durability: the mapping is shared with the file, so a record is in the
//! operating system's page cache as soon as it is copied there, before
//! `append` returns: a crash or `kill -9` of the process loses nothing that
//! was forwarded; a power loss can lose what the kernel had not yet written
//! back (the same bound as SQLite's WAL with `synchronous=NORMAL`, which the
//! store uses). A segment the process did not seal ends in zeros (its
//! unused reservation), which the replay skips.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use memmap2::MmapMut;
use sqlx::Row;

use crate::error::{Result, StoreError};
use crate::store::Store;
use crate::types::DecisionRecord;

/// The size of a segment: a record that does not fit in what is left of
/// one goes into a new one.
const SEGMENT_BYTES: u64 = 4 << 20;
const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".jsonl";

/// An open spool directory. One process writes a directory: replicas each
/// have their own.
pub struct AuditSpool {
    dir: PathBuf,
    state: Mutex<SpoolState>,
    /// Set when the database refused a batch: from then on no segment is
    /// deleted, so the next start replays what the database lacks.
    keep_everything: AtomicBool,
}

struct SpoolState {
    /// None once closed.
    current: Option<Segment>,
    segment: u64,
    bytes: u64,
    /// The sequence number of the last record appended.
    seq: u64,
    /// Sealed segments, oldest first, with the last sequence number each holds.
    sealed: VecDeque<(PathBuf, u64)>,
}

/// The segment being written: its file, reserved to [`SEGMENT_BYTES`], and
/// the shared mapping the records are copied into.
struct Segment {
    file: File,
    map: MmapMut,
}

impl Segment {
    fn create(path: &Path) -> std::io::Result<Segment> {
        let file = open_segment(path)?;
        let mapped = reserve(&file, SEGMENT_BYTES).and_then(|()| {
            // SAFETY: the mapping is of a file this process created, mode
            // 0600 in a 0700 directory, and the only writer of it; its
            // length stays SEGMENT_BYTES until the mapping is dropped
            // (`seal`), so no access through it can be past the file's end.
            unsafe { MmapMut::map_mut(&file) }
        });
        match mapped {
            Ok(map) => Ok(Segment { file, map }),
            Err(e) => {
                // Not left behind: the next attempt creates it again.
                drop(file);
                let _ = std::fs::remove_file(path);
                Err(e)
            }
        }
    }

    /// Unmaps the segment and cuts its file to the `used` bytes it holds.
    fn seal(self, used: u64) -> std::io::Result<()> {
        let Segment { file, map } = self;
        drop(map);
        file.set_len(used)
    }
}

/// Reserves `len` bytes of disk for `file` (and makes it that long).
fn reserve(file: &File, len: u64) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(len)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: a plain system call on an open descriptor we own.
        match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
            0 => Ok(()),
            errno => Err(std::io::Error::from_raw_os_error(errno)),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        file.set_len(len)
    }
}

impl std::fmt::Debug for AuditSpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSpool")
            .field("dir", &self.dir)
            .finish()
    }
}

fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{n:012}{SEGMENT_SUFFIX}"))
}

/// The segment files in `dir`, in the order they were written.
fn segments(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(n) = name
            .to_str()
            .and_then(|n| n.strip_prefix(SEGMENT_PREFIX))
            .and_then(|n| n.strip_suffix(SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((n, entry.path()));
    }
    found.sort();
    Ok(found)
}

fn spool_error(dir: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::AuditUnavailable(format!("audit spool {}: {e}", dir.display()))
}

impl AuditSpool {
    /// Opens `dir` for writing, creating it (mode 0700) if needed, with a
    /// new segment after any left there. Replay what is left first
    /// ([`Store::replay_audit_spool`]): segments found here are not the
    /// writer's to delete.
    pub fn open(dir: &Path) -> Result<AuditSpool> {
        create_private_dir(dir).map_err(|e| spool_error(dir, e))?;
        let next = segments(dir)
            .map_err(|e| spool_error(dir, e))?
            .last()
            .map_or(0, |(n, _)| n + 1);
        let current = Segment::create(&segment_path(dir, next)).map_err(|e| spool_error(dir, e))?;
        Ok(AuditSpool {
            dir: dir.to_owned(),
            state: Mutex::new(SpoolState {
                current: Some(current),
                segment: next,
                bytes: 0,
                seq: 0,
                sealed: VecDeque::new(),
            }),
            keep_everything: AtomicBool::new(false),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A record as one spool line.
    pub(crate) fn line(&self, record: &DecisionRecord) -> Result<Vec<u8>> {
        let mut line = serde_json::to_vec(record).map_err(|e| spool_error(&self.dir, e))?;
        line.push(b'\n');
        Ok(line)
    }

    /// Appends one record's line (one copy into the segment's mapping),
    /// then calls `then` with its sequence number while still holding the
    /// spool: whatever `then` queues is queued in sequence order. A line
    /// that does not fit in the current segment goes into a new one; when
    /// none can be created (a full disk), the record is refused.
    pub(crate) fn append(&self, line: &[u8], then: impl FnOnce(u64)) -> Result<()> {
        let len = line.len() as u64;
        if len > SEGMENT_BYTES {
            return Err(spool_error(&self.dir, "record larger than a segment"));
        }
        let mut state = self
            .state
            .lock()
            .map_err(|_| spool_error(&self.dir, "poisoned"))?;
        if state.bytes + len > SEGMENT_BYTES {
            self.rotate(&mut state)?;
        }
        let at = state.bytes as usize;
        let Some(current) = state.current.as_mut() else {
            return Err(spool_error(&self.dir, "closed"));
        };
        current.map[at..at + line.len()].copy_from_slice(line);
        state.seq += 1;
        state.bytes += len;
        then(state.seq);
        Ok(())
    }

    /// Seals the current segment and starts the next one.
    fn rotate(&self, state: &mut SpoolState) -> Result<()> {
        let next = state.segment + 1;
        let fresh = Segment::create(&segment_path(&self.dir, next))
            .map_err(|e| spool_error(&self.dir, e))?;
        if let Some(sealed) = state.current.replace(fresh) {
            self.seal(sealed, state.bytes);
        }
        let last = state.seq;
        state
            .sealed
            .push_back((segment_path(&self.dir, state.segment), last));
        state.segment = next;
        state.bytes = 0;
        Ok(())
    }

    fn seal(&self, segment: Segment, used: u64) {
        if let Err(e) = segment.seal(used) {
            // Its unused tail stays zeros, which the replay skips.
            tracing::warn!(dir = %self.dir.display(), error = %e, "audit spool segment not cut to size");
        }
    }

    /// Every record up to `seq` is committed to the database: sealed
    /// segments holding nothing newer are deleted.
    pub(crate) fn committed(&self, seq: u64) {
        if self.keep_everything.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        while state.sealed.front().is_some_and(|(_, last)| *last <= seq) {
            if let Some((path, _)) = state.sealed.pop_front() {
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(path = %path.display(), error = %e, "audit spool segment not removed");
                }
            }
        }
    }

    /// The database refused records: keep every segment for the next start.
    pub(crate) fn keep_everything(&self) {
        if !self.keep_everything.swap(true, Ordering::Relaxed) {
            tracing::error!(
                dir = %self.dir.display(),
                "audit records the database refused stay in the spool; they are replayed at the next start"
            );
        }
    }

    /// The writer stopped with everything up to `seq` committed: seal the
    /// current segment and delete what is committed.
    pub(crate) fn close(&self, seq: u64) {
        if let Ok(mut state) = self.state.lock() {
            if let Some(current) = state.current.take() {
                self.seal(current, state.bytes);
            }
            let current = segment_path(&self.dir, state.segment);
            let last = state.seq;
            state.sealed.push_back((current, last));
        }
        self.committed(seq);
    }
}

fn open_segment(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The records in a segment, and how many lines did not parse.
fn read_segment(path: &Path) -> std::io::Result<(Vec<DecisionRecord>, usize)> {
    let mut records = Vec::new();
    let mut unreadable = 0;
    for line in BufReader::new(File::open(path)?).split(b'\n') {
        let line = line?;
        // Blank, or the zeros of a segment's unused reservation.
        if line.iter().all(|&b| b == 0) {
            continue;
        }
        match serde_json::from_slice::<DecisionRecord>(&line) {
            Ok(record) => records.push(record),
            Err(_) => unreadable += 1,
        }
    }
    Ok((records, unreadable))
}

/// What [`Store::replay_audit_spool`] found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SpoolReplay {
    /// Records inserted: they were not in the database.
    pub inserted: usize,
    /// Records already in the database.
    pub present: usize,
    /// Lines that did not parse (a torn last line after a power loss).
    pub unreadable: usize,
}

impl Store {
    /// Inserts into the audit log the spooled records in `dir` that it does
    /// not have yet, then deletes the segments. Run before the spool is
    /// opened for writing. Records replayed this way keep the latency they
    /// were spooled with (0: the call's outcome was lost with the process).
    pub async fn replay_audit_spool(&self, dir: &Path) -> Result<SpoolReplay> {
        let mut replay = SpoolReplay::default();
        for (_, path) in segments(dir).map_err(|e| spool_error(dir, e))? {
            let (mut records, unreadable) = read_segment(&path).map_err(|e| spool_error(dir, e))?;
            replay.unreadable += unreadable;
            if let (Some(min), Some(max)) = (
                records.iter().map(|r| r.at_ms).min(),
                records.iter().map(|r| r.at_ms).max(),
            ) {
                let present: HashSet<String> = sqlx::query(
                    "SELECT decision_id FROM audit_log WHERE at_ms >= $1 AND at_ms <= $2 AND kind = 'decision'",
                )
                .bind(min)
                .bind(max)
                .fetch_all(self.pool())
                .await?
                .iter()
                .filter_map(|row| row.try_get::<Option<String>, _>(0).ok().flatten())
                .collect();
                let before = records.len();
                records.retain(|r| !present.contains(&r.decision_id));
                replay.present += before - records.len();
                crate::audit::write_batch(self.pool(), self.backend(), &records, &[]).await?;
                replay.inserted += records.len();
            }
            std::fs::remove_file(&path).map_err(|e| spool_error(dir, e))?;
        }
        if replay != SpoolReplay::default() {
            tracing::info!(
                inserted = replay.inserted,
                present = replay.present,
                unreadable = replay.unreadable,
                dir = %dir.display(),
                "audit spool replayed"
            );
        }
        Ok(replay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u64) -> DecisionRecord {
        DecisionRecord {
            decision_id: format!("d{n}"),
            at_ms: 1_700_000_000_000 + n as i64,
            org: None,
            key: None,
            end_user: None,
            agent: None,
            method: "tools/call".into(),
            server_slug: "s".into(),
            tool: Some("t".into()),
            allowed: true,
            reason: None,
            revision: 1,
            latency_us: 0,
        }
    }

    #[test]
    fn appends_in_sequence_and_deletes_only_committed_sealed_segments() {
        let dir = tempfile::tempdir().unwrap();
        let spool = AuditSpool::open(dir.path()).unwrap();
        let mut seqs = Vec::new();
        for n in 0..3 {
            spool
                .append(&spool.line(&record(n)).unwrap(), |s| seqs.push(s))
                .unwrap();
        }
        assert_eq!(seqs, [1, 2, 3]);
        // The fourth record does not fit in what is left of the segment:
        // it goes into a new one, and the first is sealed with three.
        spool.state.lock().unwrap().bytes = SEGMENT_BYTES - 10;
        spool
            .append(&spool.line(&record(3)).unwrap(), |_| {})
            .unwrap();
        assert_eq!(segments(dir.path()).unwrap().len(), 2);
        let first = segment_path(dir.path(), 0);
        assert_eq!(
            std::fs::metadata(&first).unwrap().len(),
            SEGMENT_BYTES - 10,
            "a sealed segment is cut to what it holds"
        );
        spool.committed(2);
        assert_eq!(
            segments(dir.path()).unwrap().len(),
            2,
            "seq 3 is in the sealed one"
        );
        spool.committed(3);
        assert_eq!(segments(dir.path()).unwrap().len(), 1);
        spool.keep_everything();
        spool.close(5);
        assert_eq!(
            segments(dir.path()).unwrap().len(),
            1,
            "kept after a refusal"
        );
    }

    #[test]
    fn what_a_killed_process_appended_is_read_back_and_its_zeros_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let spool = AuditSpool::open(dir.path()).unwrap();
        for n in 0..3 {
            spool
                .append(&spool.line(&record(n)).unwrap(), |_| {})
                .unwrap();
        }
        // Never closed, as after `kill -9`: the segment keeps its full,
        // zero-filled reservation after the three lines.
        drop(spool);
        let path = segment_path(dir.path(), 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), SEGMENT_BYTES);
        let (records, unreadable) = read_segment(&path).unwrap();
        let ids: Vec<_> = records.iter().map(|r| r.decision_id.as_str()).collect();
        assert_eq!(ids, ["d0", "d1", "d2"]);
        assert_eq!(unreadable, 0);
    }

    #[test]
    fn a_closed_spool_refuses_records_and_keeps_nothing_past_them() {
        let dir = tempfile::tempdir().unwrap();
        let spool = AuditSpool::open(dir.path()).unwrap();
        let line = spool.line(&record(0)).unwrap();
        spool.append(&line, |_| {}).unwrap();
        spool.keep_everything();
        spool.close(0);
        let path = segment_path(dir.path(), 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), line.len() as u64);
        assert!(spool.append(&line, |_| {}).is_err());
    }

    #[test]
    fn a_new_spool_starts_after_the_segments_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        drop(AuditSpool::open(dir.path()).unwrap());
        let spool = AuditSpool::open(dir.path()).unwrap();
        assert_eq!(spool.state.lock().unwrap().segment, 1);
    }
}
