//! The journal of a device's outputs: every sample a device finishes is appended (keyed by
//! the digest of its inputs) before the replay goes on, so a run cut short by a dead agent or
//! a lost link keeps what was done, and the same command run again resumes from it.
//!
//! Records are `u32 LE length | payload | SHA-256(payload)`; a torn or corrupted tail (the
//! harness killed mid-write) is cut off on opening, never read as outputs. Only offsets are
//! held in memory: outputs are read back from the file when asked for.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use sha2::{Digest, Sha256};

use super::protocol::{decode_tensors, encode_tensors, TensorShape, MAX_TENSOR_BODY_BYTES};
use crate::engine::Tensor;
use crate::vocab::{Error, Result};

/// Digest of a sample's inputs: shapes and bits, so equal inputs share their outputs.
pub type InputDigest = [u8; 32];

pub fn input_digest(inputs: &[Tensor]) -> InputDigest {
    let mut h = Sha256::new();
    for t in inputs {
        h.update((t.ndim() as u64).to_le_bytes());
        t.shape().iter().for_each(|d| h.update((*d as u64).to_le_bytes()));
        t.iter().for_each(|x| h.update(x.to_le_bytes()));
    }
    h.finalize().into()
}

/// Where each record's payload lies in the file: (offset, length).
type Places = HashMap<InputDigest, (u64, u32)>;

/// Whether two samples' outputs are the same bit for bit (MLPerf's TEST01 asks no less of a
/// timed run against the accuracy run).
pub fn same_outputs(a: &[Tensor], b: &[Tensor]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.shape() == y.shape() && x.iter().zip(y.iter()).all(|(p, q)| p.to_bits() == q.to_bits())
        })
}

pub struct Journal {
    path: PathBuf,
    file: File,
    entries: Places,
    end: u64,
}

/// Largest payload a record may claim: a frame's tensors and their shapes.
const MAX_PAYLOAD: u64 = MAX_TENSOR_BODY_BYTES + (1 << 20);

impl Journal {
    /// Opens (or starts) the journal at `path`, keeping every whole, intact record.
    pub fn open(path: &Path) -> Result<Journal> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        lock(&file, path)?;
        let (entries, end) = scan(&mut file).map_err(|e| Error::io(path, e))?;
        // A torn tail is cut off, so the next record follows the last whole one.
        file.set_len(end).map_err(|e| Error::io(path, e))?;
        Ok(Journal { path: path.to_path_buf(), file, entries, end })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The outputs journalled for these inputs, if any.
    pub fn get(&self, digest: &InputDigest) -> Result<Option<Vec<Tensor>>> {
        let Some(&(offset, len)) = self.entries.get(digest) else { return Ok(None) };
        let mut payload = vec![0u8; len as usize];
        self.file.read_exact_at(&mut payload, offset).map_err(|e| Error::io(&self.path, e))?;
        let report = |why: String| Error::Report {
            path: self.path.clone(),
            message: format!("record at byte {offset}: {why}"),
        };
        let (stored, outputs) = decode_payload(&payload).map_err(report)?;
        // Offsets are this process's: a file changed under it must not answer for another sample.
        if &stored != digest {
            return Err(report("holds another sample's outputs: the journal changed under this run".into()));
        }
        Ok(Some(outputs))
    }

    /// Deletes the journal: its run finished, so a later run must ask the device afresh rather
    /// than be answered from a finished run's outputs.
    pub fn discard(&self) {
        let _ = std::fs::remove_file(&self.path);
    }

    /// Appends a sample's outputs and flushes them to the file before returning.
    pub fn append(&mut self, digest: InputDigest, outputs: &[Tensor]) -> Result<()> {
        if self.entries.contains_key(&digest) {
            return Ok(());
        }
        let (shapes, body) = encode_tensors(outputs);
        let header = serde_json::to_vec(&shapes).expect("plain data");
        let mut payload = Vec::with_capacity(36 + header.len() + body.len());
        payload.extend_from_slice(&digest);
        payload.extend_from_slice(&(header.len() as u32).to_le_bytes());
        payload.extend_from_slice(&header);
        payload.extend_from_slice(&body);
        let mut record = Vec::with_capacity(payload.len() + 36);
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&payload);
        record.extend_from_slice(&Sha256::digest(&payload));
        self.file.write_all(&record).and_then(|_| self.file.flush()).map_err(|e| Error::io(&self.path, e))?;
        self.entries.insert(digest, (self.end + 4, payload.len() as u32));
        self.end += record.len() as u64;
        Ok(())
    }
}

/// How long a held journal lock is waited for. A process that another thread forks holds
/// every open file until it execs (milliseconds), and with it the lock; another run holds it
/// for minutes.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Takes the journal's exclusive lock: two runs appending to one journal would interleave their
/// records, so the second is told rather than let in.
fn lock(file: &File, path: &Path) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Usage(format!(
                    "{}: another edgecert run is using this device journal: let it finish, or give this run another --out",
                    path.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(path, e)),
        }
    }
}

/// A runtime outside this process as a loaded model sees its journal: outputs kept as they
/// finish, timed outputs compared with them (TEST01), and the first failure remembered, so
/// later calls fail at once with it and the journal is kept to resume from. A run that never
/// failed is finished: dropping it deletes the journal.
pub struct DeviceJournal {
    model: PathBuf,
    journal: Mutex<Journal>,
    /// Timed runs whose outputs were compared with the journalled ones, and how many differed.
    consistency: Mutex<(usize, usize)>,
    failed: Mutex<Option<String>>,
}

impl DeviceJournal {
    /// Opens the journal at `path` for `model` run by `runtime`, saying so when it resumes.
    pub fn open(model: &Path, path: &Path, runtime: &str) -> Result<DeviceJournal> {
        let journal = Journal::open(path)?;
        if !journal.is_empty() {
            eprintln!(
                "resuming from {} finished samples of {runtime} kept in {}",
                journal.len(),
                journal.path().display()
            );
        }
        Ok(DeviceJournal {
            model: model.to_path_buf(),
            journal: Mutex::new(journal),
            consistency: Mutex::new((0, 0)),
            failed: Mutex::new(None),
        })
    }

    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Per sample, its journalled outputs if there are any.
    pub fn lookup(&self, digests: &[InputDigest]) -> Result<Vec<Option<Vec<Tensor>>>> {
        let journal = self.journal();
        digests.iter().map(|d| journal.get(d)).collect()
    }

    /// Keeps finished samples' outputs before the replay goes on.
    pub fn record<'a>(&self, finished: impl IntoIterator<Item = (InputDigest, &'a [Tensor])>) -> Result<()> {
        let mut journal = self.journal();
        finished.into_iter().try_for_each(|(digest, outputs)| journal.append(digest, outputs))
    }

    /// Compares timed outputs with the journalled ones (MLPerf's TEST01: a timed run must
    /// compute what the accuracy run did).
    pub fn compare_timed<'a>(
        &self,
        timed: impl IntoIterator<Item = (&'a [Tensor], &'a [Tensor])>,
    ) -> Result<()> {
        let journal = self.journal();
        let mut consistency = self.consistency.lock().unwrap_or_else(|p| p.into_inner());
        for (inputs, outputs) in timed {
            if let Some(journalled) = journal.get(&input_digest(inputs))? {
                consistency.0 += 1;
                consistency.1 += usize::from(!same_outputs(&journalled, outputs));
            }
        }
        Ok(())
    }

    /// Timed runs compared, and how many differed.
    pub fn consistency(&self) -> (usize, usize) {
        *self.consistency.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The first failure, if the runtime failed.
    pub fn failed(&self) -> Option<String> {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Remembers the runtime's failure (the first one stands) and gives the error for it,
    /// saying what is kept and how to resume.
    pub fn fail(&self, why: String) -> Error {
        self.failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| why.clone());
        let journal = self.journal();
        Error::Inference {
            path: self.model.clone(),
            message: format!(
                "{why}; {} finished samples are kept in {}: run the same command again to resume",
                journal.len(),
                journal.path().display()
            ),
        }
    }
}

impl Drop for DeviceJournal {
    fn drop(&mut self) {
        if self.failed.get_mut().unwrap_or_else(|p| p.into_inner()).is_none() {
            self.journal.get_mut().unwrap_or_else(|p| p.into_inner()).discard();
        }
    }
}

/// Every intact record's place, and where the intact prefix of the file ends, read a record
/// at a time (a journal may be larger than memory).
fn scan(file: &mut File) -> std::io::Result<(Places, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = std::io::BufReader::new(&*file);
    let mut entries = HashMap::new();
    let mut at = 0u64;
    while let Some((digest, len)) = next_record(&mut reader) {
        entries.insert(digest, (at + 4, len));
        at += 4 + len as u64 + 32;
    }
    Ok((entries, at))
}

/// The next record, if it is whole and its checksum holds.
fn next_record(reader: &mut impl Read) -> Option<(InputDigest, u32)> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len).ok()?;
    let len = u32::from_le_bytes(len);
    if len as u64 > MAX_PAYLOAD {
        return None;
    }
    let mut payload = Vec::new();
    reader.take(len as u64).read_to_end(&mut payload).ok()?;
    let mut checksum = [0u8; 32];
    reader.read_exact(&mut checksum).ok()?;
    if payload.len() != len as usize || Sha256::digest(&payload).as_slice() != checksum {
        return None;
    }
    decode_payload(&payload).ok().map(|(digest, _)| (digest, len))
}

fn decode_payload(payload: &[u8]) -> std::result::Result<(InputDigest, Vec<Tensor>), String> {
    let digest: InputDigest = payload.get(..32).ok_or("short record")?.try_into().expect("32 bytes");
    let header_len =
        u32::from_le_bytes(payload.get(32..36).ok_or("short record")?.try_into().expect("4 bytes"));
    let header = payload.get(36..36 + header_len as usize).ok_or("short record")?;
    let shapes: Vec<TensorShape> = serde_json::from_slice(header).map_err(|e| e.to_string())?;
    let outputs = decode_tensors(&shapes, &payload[36 + header_len as usize..])?;
    Ok((digest, outputs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reopened_journal_keeps_whole_records_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.bin");
        let sample = |v: f32| vec![Tensor::from_elem(vec![1, 3], v)];
        let mut journal = Journal::open(&path).unwrap();
        for v in [1.0, 2.0, 3.0] {
            journal.append(input_digest(&sample(v)), &sample(v * 10.0)).unwrap();
        }
        drop(journal);
        // A harness killed mid-write leaves half a record.
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
        drop(f);

        let mut journal = Journal::open(&path).unwrap();
        assert_eq!(journal.len(), 3);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole, "the torn tail is cut");
        let got = journal.get(&input_digest(&sample(2.0))).unwrap().unwrap();
        assert_eq!(got[0].iter().copied().collect::<Vec<_>>(), vec![20.0; 3]);
        assert!(journal.get(&input_digest(&sample(4.0))).unwrap().is_none());
        journal.append(input_digest(&sample(4.0)), &sample(40.0)).unwrap();
        // While it is open, no other run may append to it.
        let busy = Journal::open(&path).err().expect("a journal in use is refused").to_string();
        assert!(busy.contains("another edgecert run is using this device journal"), "{busy}");
        drop(journal);
        assert_eq!(Journal::open(&path).unwrap().len(), 4);

        // A flipped bit in the first record drops it and everything after it.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[10] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(Journal::open(&path).unwrap().len(), 0);
    }
}
