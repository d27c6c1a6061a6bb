//! `proxilion._core` audit-chain functions: canonical JSON of Python objects (one walk per
//! call), entry hashing and line encoding, streaming file verification (GIL released), the
//! group-committing log writer and the RFC 6962 Merkle log.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyRecursionError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use proxilion_core::chain as core;
use proxilion_core::chain::canon;
use proxilion_core::chain::event::{self, AuthField};
use proxilion_core::chain::merkle::{self, Hash};
use proxilion_core::chain::verify;
use proxilion_core::chain::writer::{FsyncPolicy, LogWriter, WriteError};

// ------------------------------------------------------------------------------------------
// Canonical JSON of a Python object
// ------------------------------------------------------------------------------------------

/// The text of a `str` as code points, when it holds lone surrogates (not UTF-8 encodable).
fn code_points(s: &Bound<'_, PyString>) -> PyResult<Vec<u32>> {
    let b = s.call_method1("encode", ("utf-32-le", "surrogatepass"))?;
    let b = b.cast::<PyBytes>()?.as_bytes();
    Ok(b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

enum Key<'a> {
    Text(std::borrow::Cow<'a, str>),
    Points(Vec<u32>),
}

impl Key<'_> {
    fn cmp(&self, other: &Key<'_>) -> Ordering {
        match (self, other) {
            (Key::Text(a), Key::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Key::Text(a), Key::Points(b)) => a.chars().map(|c| c as u32).cmp(b.iter().copied()),
            (Key::Points(a), Key::Text(b)) => a.iter().copied().cmp(b.chars().map(|c| c as u32)),
            (Key::Points(a), Key::Points(b)) => a.cmp(b),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Key::Text(s) => canon::write_str(out, s),
            Key::Points(p) => canon::write_code_points(out, p.iter().copied()),
        }
    }
}

/// The JSON text Python gives a non-str dict key (after sorting, as `json` does).
fn other_key(k: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(f) = k.cast::<PyFloat>() {
        return Ok(canon::float_repr(f.value()));
    }
    if let Ok(b) = k.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.to_string());
    }
    if k.is_none() {
        return Ok("null".to_string());
    }
    if k.cast::<PyInt>().is_ok() {
        return int_text(k);
    }
    Err(PyTypeError::new_err(format!(
        "keys must be str, int, float, bool or None, not {}",
        k.get_type().name()?
    )))
}

fn int_text(o: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(v) = o.extract::<i64>() {
        return Ok(v.to_string());
    }
    // `int.__repr__`, as `json` uses, so int subclasses print as plain numbers.
    let r = o.py().get_type::<PyInt>().call_method1("__repr__", (o,))?;
    Ok(r.cast::<PyString>()?.to_str()?.to_string())
}

struct Encoder {
    out: Vec<u8>,
    stack: Vec<usize>,
}

impl Encoder {
    fn new() -> Self {
        Encoder {
            out: Vec::with_capacity(1024),
            stack: Vec::new(),
        }
    }

    fn enter(&mut self, o: &Bound<'_, PyAny>) -> PyResult<()> {
        let id = o.as_ptr() as usize;
        if self.stack.contains(&id) {
            return Err(PyValueError::new_err("Circular reference detected"));
        }
        if self.stack.len() >= canon::MAX_DEPTH {
            return Err(PyRecursionError::new_err(
                "maximum recursion depth exceeded while encoding a JSON object",
            ));
        }
        self.stack.push(id);
        Ok(())
    }

    fn string(&mut self, s: &Bound<'_, PyString>) -> PyResult<()> {
        match s.to_str() {
            Ok(t) => canon::write_str(&mut self.out, t),
            Err(_) => canon::write_code_points(&mut self.out, code_points(s)?),
        }
        Ok(())
    }

    fn value(&mut self, o: &Bound<'_, PyAny>) -> PyResult<()> {
        if o.is_none() {
            self.out.extend_from_slice(b"null");
        } else if let Ok(s) = o.cast::<PyString>() {
            self.string(s)?;
        } else if let Ok(b) = o.cast::<PyBool>() {
            self.out
                .extend_from_slice(if b.is_true() { b"true" } else { b"false" });
        } else if o.cast::<PyInt>().is_ok() {
            match o.extract::<i64>() {
                Ok(v) => canon::write_i64(&mut self.out, v),
                Err(_) => {
                    let t = int_text(o)?;
                    self.out.extend_from_slice(t.as_bytes());
                }
            }
        } else if let Ok(f) = o.cast::<PyFloat>() {
            canon::write_float(&mut self.out, f.value());
        } else if let Ok(l) = o.cast::<PyList>() {
            self.enter(o)?;
            self.out.push(b'[');
            for (i, item) in l.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                self.value(&item)?;
            }
            self.out.push(b']');
            self.stack.pop();
        } else if let Ok(t) = o.cast::<PyTuple>() {
            self.enter(o)?;
            self.out.push(b'[');
            for (i, item) in t.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                self.value(&item)?;
            }
            self.out.push(b']');
            self.stack.pop();
        } else if let Ok(d) = o.cast::<PyDict>() {
            self.enter(o)?;
            self.dict(d)?;
            self.stack.pop();
        } else {
            // default=str
            self.enter(o)?;
            let s = o.str()?;
            self.string(&s)?;
            self.stack.pop();
        }
        Ok(())
    }

    fn dict(&mut self, d: &Bound<'_, PyDict>) -> PyResult<()> {
        // One pass: borrow the text of every str key; stop at the first other key.
        let mut keyed: Vec<(Key<'_>, Bound<'_, PyAny>)> = Vec::with_capacity(d.len());
        let mut strs: Vec<Bound<'_, PyString>> = Vec::new();
        let mut all_str = true;
        for (k, v) in d.iter() {
            match k.cast_into::<PyString>() {
                Ok(s) => match s.to_str() {
                    Ok(_) => strs.push(s),
                    Err(_) => {
                        let cps = code_points(&s)?;
                        keyed.push((Key::Points(cps), v));
                        continue;
                    }
                },
                Err(_) => {
                    all_str = false;
                    break;
                }
            }
            keyed.push((Key::Text(std::borrow::Cow::Borrowed("")), v));
        }
        self.out.push(b'{');
        if all_str {
            // Fill in the borrowed texts now that `strs` no longer grows.
            let mut it = strs.iter();
            for (k, _) in keyed.iter_mut() {
                if let Key::Text(t) = k {
                    if let Some(s) = it.next() {
                        *t = std::borrow::Cow::Borrowed(s.to_str()?);
                    }
                }
            }
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            for (i, (k, v)) in keyed.iter().enumerate() {
                if i > 0 {
                    self.out.push(b',');
                }
                k.write(&mut self.out);
                self.out.push(b':');
                self.value(v)?;
            }
        } else {
            drop(keyed);
            // Mixed or non-str keys: let Python sort the items exactly as `json` does
            // (raising its TypeError for keys that do not compare), then convert the keys.
            let sorted = d
                .py()
                .import("builtins")?
                .getattr("sorted")?
                .call1((d.items(),))?;
            for (i, pair) in sorted.try_iter()?.enumerate() {
                let pair = pair?;
                let (k, v): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair.extract()?;
                if i > 0 {
                    self.out.push(b',');
                }
                if let Ok(s) = k.cast::<PyString>() {
                    self.string(s)?;
                } else {
                    canon::write_str(&mut self.out, &other_key(&k)?);
                }
                self.out.push(b':');
                self.value(&v)?;
            }
        }
        self.out.push(b'}');
        Ok(())
    }
}

fn encode(o: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let mut e = Encoder::new();
    e.value(o)?;
    Ok(e.out)
}

/// JSON text of a sequence number (any Python value; ints are the usual case).
fn seq_text(o: &Bound<'_, PyAny>) -> PyResult<String> {
    if o.is_exact_instance_of::<PyInt>() {
        if let Ok(v) = o.extract::<i64>() {
            return Ok(v.to_string());
        }
    }
    Ok(String::from_utf8_lossy(&encode(o)?).into_owned())
}

fn alg(name: &str) -> PyResult<core::HashAlg> {
    core::HashAlg::from_name(name).ok_or_else(|| {
        PyValueError::new_err(format!(
            "algorithm must be 'sha256' or 'blake3', got '{name}'"
        ))
    })
}

/// `json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)`, byte for byte.
#[pyfunction]
fn canonical_json(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let out = encode(obj)?;
    // The encoder writes ASCII only.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn canonical_entry_bytes(
    event_id: &str,
    timestamp: &str,
    sequence_number: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    previous_hash: &str,
) -> PyResult<(Vec<u8>, Vec<u8>, String)> {
    let data_json = encode(data)?;
    let seq = seq_text(sequence_number)?;
    let head = core::EntryHead {
        event_id,
        timestamp,
        sequence_number: &seq,
        previous_hash,
    };
    let mut c = Vec::with_capacity(data_json.len() + 256);
    core::canonical_entry(&mut c, &head, &data_json);
    Ok((c, data_json, seq))
}

/// Hash of an audit entry: `"<alg>:" + hex(H(canonical))` of
/// `{"data","event_id","previous_hash","sequence_number","timestamp"}`.
#[pyfunction]
#[pyo3(signature = (event_id, timestamp, sequence_number, data, previous_hash, algorithm = "sha256"))]
fn audit_event_hash(
    event_id: &str,
    timestamp: &str,
    sequence_number: &Bound<'_, PyAny>,
    data: &Bound<'_, PyAny>,
    previous_hash: &str,
    algorithm: &str,
) -> PyResult<String> {
    let a = alg(algorithm)?;
    let (c, _, _) =
        canonical_entry_bytes(event_id, timestamp, sequence_number, data, previous_hash)?;
    Ok(a.tagged_hex(&c))
}

/// Hash and JSONL line (with `event_hash`, `merkle_index` when given, and a final newline)
/// of an audit entry, from one walk of `data`.
#[pyfunction]
#[pyo3(signature = (event_id, timestamp, sequence_number, data, previous_hash, merkle_index = None, algorithm = "sha256"))]
#[allow(clippy::too_many_arguments)] // the Python signature
fn audit_event_line<'py>(
    py: Python<'py>,
    event_id: &str,
    timestamp: &str,
    sequence_number: &Bound<'py, PyAny>,
    data: &Bound<'py, PyAny>,
    previous_hash: &str,
    merkle_index: Option<i64>,
    algorithm: &str,
) -> PyResult<(String, Bound<'py, PyBytes>)> {
    let a = alg(algorithm)?;
    let (c, data_json, seq) =
        canonical_entry_bytes(event_id, timestamp, sequence_number, data, previous_hash)?;
    let h = a.tagged_hex(&c);
    let head = core::EntryHead {
        event_id,
        timestamp,
        sequence_number: &seq,
        previous_hash,
    };
    let mut line = Vec::with_capacity(c.len() + 100);
    core::entry_line(&mut line, &head, &data_json, &h, merkle_index);
    Ok((h, PyBytes::new(py, &line)))
}

// ------------------------------------------------------------------------------------------
// Verification
// ------------------------------------------------------------------------------------------

fn hash32(b: &[u8], what: &str) -> PyResult<Hash> {
    b.try_into().map_err(|_| {
        PyValueError::new_err(format!("{what} must be 32 bytes, got {} bytes", b.len()))
    })
}

/// Verify JSONL files in order as one hash chain (GIL released while reading). Returns a
/// dict describing the outcome; see `proxilion.audit.verify` for its fields.
#[pyfunction]
#[pyo3(signature = (paths, checkpoints = None, collect_digests = false, allow_genesis_restart = false, progress = None))]
fn audit_verify_files<'py>(
    py: Python<'py>,
    paths: Vec<PathBuf>,
    checkpoints: Option<Vec<(u64, Vec<u8>)>>,
    collect_digests: bool,
    allow_genesis_restart: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut cps = Vec::new();
    for (size, root) in checkpoints.unwrap_or_default() {
        cps.push((size, hash32(&root, "checkpoint root")?));
    }
    let opts = verify::Options {
        checkpoints: cps,
        collect_digests,
        allow_genesis_restart,
    };
    let (report, cb_err) = py.detach(|| {
        let mut cb_err: Option<PyErr> = None;
        let mut cb = |n: u64| {
            if let (Some(f), None) = (&progress, &cb_err) {
                Python::attach(|py| {
                    if let Err(e) = f.call1(py, (n,)) {
                        cb_err = Some(e);
                    }
                });
            }
        };
        let r = verify::verify_files(&paths, &opts, &mut cb);
        (r, cb_err)
    });
    if let Some(e) = cb_err {
        return Err(e);
    }
    let d = PyDict::new(py);
    d.set_item("valid", report.is_valid())?;
    d.set_item("status", report.status.name())?;
    d.set_item("kind", report.kind.map(|k| k.name()))?;
    d.set_item("message", report.message)?;
    d.set_item("file_index", report.file_index)?;
    d.set_item("line", report.line)?;
    d.set_item("expected", report.expected)?;
    d.set_item("got", report.got)?;
    d.set_item("verified_count", report.verified_count)?;
    d.set_item("markers", report.markers)?;
    d.set_item("restarts", report.restarts)?;
    d.set_item("bytes_read", report.bytes_read)?;
    d.set_item("files_read", report.files_read)?;
    d.set_item("algorithm", report.algorithm.map(|a| a.name()))?;
    d.set_item("last_hash", report.last_hash)?;
    d.set_item("root", PyBytes::new(py, &report.root))?;
    d.set_item("checkpoints_checked", report.checkpoints_checked)?;
    if collect_digests {
        let flat: Vec<u8> = report.digests.concat();
        d.set_item("digests", PyBytes::new(py, &flat))?;
    } else {
        d.set_item("digests", py.None())?;
    }
    Ok(d)
}

// ------------------------------------------------------------------------------------------
// Writer
// ------------------------------------------------------------------------------------------

fn write_err(e: WriteError) -> PyErr {
    match e {
        WriteError::Io(m) => PyOSError::new_err(m),
        WriteError::Closed => PyValueError::new_err("I/O operation on closed audit log file"),
    }
}

/// Append-only audit file with buffering, group commit and an fsync policy
/// (`"always"`, `"interval"`, `"never"`).
#[pyclass(frozen, module = "proxilion._core")]
struct AuditFileWriter {
    inner: LogWriter,
}

#[pymethods]
impl AuditFileWriter {
    #[new]
    #[pyo3(signature = (path, fsync = "interval", fsync_interval = 1.0, sync_writes = true))]
    fn new(path: PathBuf, fsync: &str, fsync_interval: f64, sync_writes: bool) -> PyResult<Self> {
        let policy = match fsync {
            "always" => FsyncPolicy::Always,
            "never" => FsyncPolicy::Never,
            "interval" => {
                if !(fsync_interval.is_finite() && fsync_interval >= 0.0) {
                    return Err(PyValueError::new_err(format!(
                        "fsync_interval must be a finite number of seconds >= 0, got {fsync_interval}"
                    )));
                }
                FsyncPolicy::Interval(Duration::from_secs_f64(fsync_interval))
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "fsync must be 'always', 'interval' or 'never', got '{other}'"
                )))
            }
        };
        let inner = LogWriter::open(&path, policy, sync_writes).map_err(write_err)?;
        Ok(AuditFileWriter { inner })
    }

    /// Queue bytes (whole lines); returns the ticket to pass to `commit`.
    fn enqueue(&self, data: &[u8]) -> PyResult<u64> {
        self.inner.enqueue(data).map_err(write_err)
    }

    /// Make everything up to `ticket` as durable as the policy promises (GIL released).
    fn commit(&self, py: Python<'_>, ticket: u64) -> PyResult<()> {
        py.detach(|| self.inner.commit(ticket)).map_err(write_err)
    }

    /// `enqueue` then `commit`.
    fn append(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let t = self.inner.enqueue(data).map_err(write_err)?;
        py.detach(|| self.inner.commit(t)).map_err(write_err)
    }

    /// Write everything queued and fsync it.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.flush()).map_err(write_err)
    }

    /// Flush and close; later appends raise `ValueError`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.close()).map_err(write_err)
    }

    /// Path of the file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    /// Size of the file including queued bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.inner.size()
    }

    /// Counters: enqueued, written, synced (bytes), writes, syncs, initial_size.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.stats();
        let d = PyDict::new(py);
        d.set_item("enqueued", s.enqueued)?;
        d.set_item("written", s.written)?;
        d.set_item("synced", s.synced)?;
        d.set_item("writes", s.writes)?;
        d.set_item("syncs", s.syncs)?;
        d.set_item("initial_size", s.initial_size)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "AuditFileWriter(path={:?}, fsync={:?})",
            self.inner.path().display().to_string(),
            match self.inner.policy() {
                FsyncPolicy::Always => "always",
                FsyncPolicy::Interval(_) => "interval",
                FsyncPolicy::Never => "never",
            }
        )
    }
}

// ------------------------------------------------------------------------------------------
// Merkle log
// ------------------------------------------------------------------------------------------

fn merkle_err(e: merkle::MerkleError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn hashes_out<'py>(py: Python<'py>, v: &[Hash]) -> Vec<Bound<'py, PyBytes>> {
    v.iter().map(|h| PyBytes::new(py, h)).collect()
}

fn hashes_in(v: &[Vec<u8>]) -> PyResult<Vec<Hash>> {
    v.iter().map(|b| hash32(b, "proof hash")).collect()
}

/// RFC 6962 Merkle tree over an append-only list of leaves; roots and proofs for any size.
#[pyclass(module = "proxilion._core")]
struct MerkleLog {
    inner: merkle::MerkleLog,
}

#[pymethods]
impl MerkleLog {
    #[new]
    fn new() -> Self {
        MerkleLog {
            inner: merkle::MerkleLog::new(),
        }
    }

    /// Append a leaf (its bytes are hashed as `SHA-256(0x00 || data)`); returns its index.
    fn append(&mut self, data: &[u8]) -> u64 {
        self.inner.push(data);
        self.inner.size() - 1
    }

    /// Append leaves given as concatenated 32-byte values (each hashed as a leaf).
    fn extend_leaves(&mut self, data: &[u8]) -> PyResult<()> {
        if data.len() % 32 != 0 {
            return Err(PyValueError::new_err(format!(
                "leaves must be a multiple of 32 bytes, got {} bytes",
                data.len()
            )));
        }
        for c in data.chunks_exact(32) {
            self.inner.push(c);
        }
        Ok(())
    }

    /// Append leaf hashes given as concatenated 32-byte values.
    fn extend_leaf_hashes(&mut self, hashes: &[u8]) -> PyResult<()> {
        if hashes.len() % 32 != 0 {
            return Err(PyValueError::new_err(format!(
                "leaf hashes must be a multiple of 32 bytes, got {} bytes",
                hashes.len()
            )));
        }
        for c in hashes.chunks_exact(32) {
            self.inner.push_leaf_hash(hash32(c, "leaf hash")?);
        }
        Ok(())
    }

    /// Number of leaves.
    #[getter]
    fn size(&self) -> u64 {
        self.inner.size()
    }

    /// Root of the first `size` leaves (all by default).
    #[pyo3(signature = (size = None))]
    fn root<'py>(&self, py: Python<'py>, size: Option<u64>) -> PyResult<Bound<'py, PyBytes>> {
        let r = self
            .inner
            .root(size.unwrap_or(self.inner.size()))
            .map_err(merkle_err)?;
        Ok(PyBytes::new(py, &r))
    }

    /// Inclusion proof of leaf `index` in the tree of `size` leaves (all by default).
    #[pyo3(signature = (index, size = None))]
    fn inclusion_proof<'py>(
        &self,
        py: Python<'py>,
        index: u64,
        size: Option<u64>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let p = self
            .inner
            .inclusion_proof(index, size.unwrap_or(self.inner.size()))
            .map_err(merkle_err)?;
        Ok(hashes_out(py, &p))
    }

    /// Consistency proof from the tree of `old_size` leaves to that of `new_size` (all).
    #[pyo3(signature = (old_size, new_size = None))]
    fn consistency_proof<'py>(
        &self,
        py: Python<'py>,
        old_size: u64,
        new_size: Option<u64>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let p = self
            .inner
            .consistency_proof(old_size, new_size.unwrap_or(self.inner.size()))
            .map_err(merkle_err)?;
        Ok(hashes_out(py, &p))
    }

    /// Leaf hash at `index`.
    fn leaf_hash<'py>(&self, py: Python<'py>, index: u64) -> PyResult<Bound<'py, PyBytes>> {
        let h = self.inner.leaf(index).ok_or_else(|| {
            merkle_err(merkle::MerkleError::IndexOutOfRange {
                index,
                size: self.inner.size(),
            })
        })?;
        Ok(PyBytes::new(py, &h))
    }

    fn __len__(&self) -> usize {
        self.inner.size() as usize
    }
}

/// `SHA-256(0x00 || data)`, the RFC 6962 leaf hash.
#[pyfunction]
fn merkle_leaf_hash<'py>(py: Python<'py>, data: &[u8]) -> Bound<'py, PyBytes> {
    PyBytes::new(py, &merkle::leaf_hash(data))
}

/// Check an RFC 6962 inclusion proof (RFC 9162 algorithm).
#[pyfunction]
fn merkle_verify_inclusion(
    leaf_hash: &[u8],
    index: u64,
    size: u64,
    proof: Vec<Vec<u8>>,
    root: &[u8],
) -> PyResult<bool> {
    let (Ok(leaf), Ok(root)) = (hash32(leaf_hash, "leaf hash"), hash32(root, "root")) else {
        return Ok(false);
    };
    let Ok(proof) = hashes_in(&proof) else {
        return Ok(false);
    };
    Ok(merkle::verify_inclusion(&leaf, index, size, &proof, &root))
}

/// Check an RFC 6962 consistency proof (RFC 9162 algorithm).
#[pyfunction]
fn merkle_verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &[u8],
    new_root: &[u8],
    proof: Vec<Vec<u8>>,
) -> PyResult<bool> {
    let (Ok(a), Ok(b)) = (hash32(old_root, "root"), hash32(new_root, "root")) else {
        return Ok(false);
    };
    let Ok(proof) = hashes_in(&proof) else {
        return Ok(false);
    };
    Ok(merkle::verify_consistency(
        old_size, new_size, &a, &b, &proof,
    ))
}

// ------------------------------------------------------------------------------------------
// Authorization entries: one native call per entry
// ------------------------------------------------------------------------------------------

/// Positions in the record tuple kept by each event built by `AuditChain` (`_lazy`), from
/// which `AuditEventV2.data` and `.timestamp` are materialised on first access and the hash
/// is recomputed. Shared with `proxilion.audit.events` and the reference twin.
const REC_TIMESTAMP: usize = 0;
const REC_TOOL_TIMESTAMP: usize = 1;
const REC_LEN: usize = 15;

/// The values of an authorization entry (after the original's copies).
struct Auth<'py> {
    user_id: Bound<'py, PyAny>,
    roles: Bound<'py, PyAny>,
    session_id: Bound<'py, PyAny>,
    attributes: Bound<'py, PyAny>,
    agent_id: Bound<'py, PyAny>,
    capabilities: Bound<'py, PyAny>,
    trust_score: Bound<'py, PyAny>,
    tool_name: Bound<'py, PyAny>,
    arguments: Bound<'py, PyAny>,
    allowed: Bound<'py, PyAny>,
    reason: Bound<'py, PyAny>,
    policies: Bound<'py, PyAny>,
    execution_result: Bound<'py, PyAny>,
}

impl<'py> Auth<'py> {
    fn field(&self, f: AuthField) -> &Bound<'py, PyAny> {
        match f {
            AuthField::AgentId => &self.agent_id,
            AuthField::Capabilities => &self.capabilities,
            AuthField::TrustScore => &self.trust_score,
            AuthField::Allowed => &self.allowed,
            AuthField::Policies => &self.policies,
            AuthField::Reason => &self.reason,
            AuthField::ExecutionResult => &self.execution_result,
            AuthField::Arguments => &self.arguments,
            AuthField::ToolName => &self.tool_name,
            AuthField::Attributes => &self.attributes,
            AuthField::Roles => &self.roles,
            AuthField::SessionId => &self.session_id,
            AuthField::UserId => &self.user_id,
        }
    }

    /// `AuditEventData.to_dict()` of this decision, canonically encoded.
    fn encode(&self, tool_timestamp: &str) -> PyResult<Vec<u8>> {
        let granted = self.allowed.is_truthy()?;
        let with_agent = self.agent_id.is_truthy()?;
        let mut e = Encoder::new();
        let mut out = std::mem::take(&mut e.out);
        event::write_authorization_data(&mut out, granted, with_agent, tool_timestamp, |o, f| {
            let v = self.field(f);
            if v.is_none() {
                // A container stored as None is an empty one (see `empty_as_none`).
                match f {
                    AuthField::Roles | AuthField::Capabilities | AuthField::Policies => {
                        o.extend_from_slice(b"[]");
                        return Ok(());
                    }
                    AuthField::Attributes | AuthField::Arguments => {
                        o.extend_from_slice(b"{}");
                        return Ok(());
                    }
                    _ => {}
                }
            }
            std::mem::swap(o, &mut e.out);
            let r = e.value(v);
            std::mem::swap(o, &mut e.out);
            r
        })?;
        Ok(out)
    }

    fn from_record(rec: &Bound<'py, PyTuple>) -> PyResult<Self> {
        if rec.len() != REC_LEN {
            return Err(PyValueError::new_err(format!(
                "an authorization record has {REC_LEN} items, got {}",
                rec.len()
            )));
        }
        let g = |i: usize| rec.get_item(i);
        Ok(Auth {
            user_id: g(2)?,
            roles: g(3)?,
            session_id: g(4)?,
            attributes: g(5)?,
            agent_id: g(6)?,
            capabilities: g(7)?,
            trust_score: g(8)?,
            tool_name: g(9)?,
            arguments: g(10)?,
            allowed: g(11)?,
            reason: g(12)?,
            policies: g(13)?,
            execution_result: g(14)?,
        })
    }

    fn record(&self, py: Python<'py>, ts_us: i64, tool_us: i64) -> PyResult<Bound<'py, PyTuple>> {
        let ts = ts_us.into_pyobject(py)?.into_any();
        PyTuple::new(
            py,
            [
                ts.clone(),
                if tool_us == ts_us {
                    ts
                } else {
                    tool_us.into_pyobject(py)?.into_any()
                },
                self.user_id.clone(),
                self.roles.clone(),
                self.session_id.clone(),
                self.attributes.clone(),
                self.agent_id.clone(),
                self.capabilities.clone(),
                self.trust_score.clone(),
                self.tool_name.clone(),
                self.arguments.clone(),
                self.allowed.clone(),
                self.reason.clone(),
                self.policies.clone(),
                self.execution_result.clone(),
            ],
        )
    }
}

fn iso(us: i64) -> PyResult<String> {
    event::iso_utc_string(us).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// `tuple(x)` / `dict(x)` as Python evaluates them (exact types, errors and all); plain
/// lists, tuples and dicts are copied directly. List fields are kept as tuples in the
/// record (materialised as lists): a tuple of strings is not tracked by the cycle
/// collector, so a long in-memory log costs the collector less.
fn py_tuple<'py>(x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = x.py();
    if let Ok(l) = x.cast_exact::<PyList>() {
        return Ok(PyTuple::new(py, l.iter())?.into_any());
    }
    if x.is_exact_instance_of::<PyTuple>() {
        return Ok(x.clone());
    }
    py.get_type::<PyTuple>().call1((x,))
}

fn py_dict<'py>(x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if let Ok(d) = x.cast_exact::<PyDict>() {
        return Ok(d.copy()?.into_any());
    }
    x.py().get_type::<PyDict>().call1((x,))
}

/// `list(x)` / `dict(x)` / `list(x or [])` / `dict(x or {})` as the original copies them
/// (lists as tuples, see `py_tuple`), except that an empty result is kept as None (materialised as a new empty container on
/// access, encoded as `[]` / `{}`): an event with no attributes stores no empty dict.
fn empty_as_none<'py>(copy: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    Ok(if copy.len()? == 0 {
        copy.py().None().into_bound(copy.py())
    } else {
        copy
    })
}

fn copy_list<'py>(
    x: Option<&Bound<'py, PyAny>>,
    or_empty: bool,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match x {
        Some(v) if !or_empty || v.is_truthy()? => Some(empty_as_none(py_tuple(v)?)).transpose(),
        _ => Ok(None),
    }
}

fn copy_dict<'py>(
    x: Option<&Bound<'py, PyAny>>,
    or_empty: bool,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    match x {
        Some(v) if !or_empty || v.is_truthy()? => Some(empty_as_none(py_dict(v)?)).transpose(),
        _ => Ok(None),
    }
}

/// Hash of an authorization entry from its record (see `AuditChain`): what
/// `AuditEventV2.compute_hash` gives for the event the record materialises to.
/// `timestamp` is the entry's iso timestamp, or None to use the record's.
#[pyfunction]
#[pyo3(signature = (record, event_id, timestamp, sequence_number, previous_hash, algorithm = "sha256"))]
fn audit_authorization_hash(
    record: &Bound<'_, PyTuple>,
    event_id: &str,
    timestamp: Option<&str>,
    sequence_number: &Bound<'_, PyAny>,
    previous_hash: &str,
    algorithm: &str,
) -> PyResult<String> {
    let a = alg(algorithm)?;
    let auth = Auth::from_record(record)?;
    let ts_owned;
    let ts = match timestamp {
        Some(t) => t,
        None => {
            ts_owned = iso(record.get_item(REC_TIMESTAMP)?.extract::<i64>()?)?;
            &ts_owned
        }
    };
    let tool = iso(record.get_item(REC_TOOL_TIMESTAMP)?.extract::<i64>()?)?;
    let data_json = auth.encode(&tool)?;
    let seq = seq_text(sequence_number)?;
    let head = core::EntryHead {
        event_id,
        timestamp: ts,
        sequence_number: &seq,
        previous_hash,
    };
    let mut c = Vec::with_capacity(data_json.len() + 256);
    core::canonical_entry(&mut c, &head, &data_json);
    Ok(a.tagged_hex(&c))
}

/// The original SDK's `MerkleTree.compute_root` (pair hash over the hex texts; a single leaf
/// is its own root; an odd last node pairs with itself).
#[pyfunction]
fn audit_merkle_root<'py>(leaves: Vec<Bound<'py, PyString>>) -> PyResult<Bound<'py, PyString>> {
    match leaves.as_slice() {
        [] => Err(PyValueError::new_err("Cannot compute root of empty tree")),
        [one] => Ok(one.clone()),
        _ => {
            let texts = leaves
                .iter()
                .map(|l| l.to_str())
                .collect::<PyResult<Vec<&str>>>()?;
            let root = event::legacy_merkle_root(&texts).unwrap_or_default();
            Ok(PyString::new(leaves[0].py(), &root))
        }
    }
}

/// The state of an in-memory audit hash chain (head, retained events, current Merkle batch)
/// and its hot path: `append_authorization` / `write_authorization` build, hash and chain
/// one authorization entry per call. Not reentrant: callers serialise access (the Python
/// `HashChain` holds its lock); a conflicting call raises `RuntimeError`.
#[pyclass(module = "proxilion._core")]
struct AuditChain {
    alg: core::HashAlg,
    event_class: Py<PyAny>,
    event_new: Py<PyAny>,
    genesis: Py<PyString>,
    head: Py<PyString>,
    head_text: String,
    base: Py<PyString>,
    length: u64,
    dropped: u64,
    max_events: Option<usize>,
    events: VecDeque<Py<PyAny>>,
    leaves: Vec<Py<PyString>>,
}

struct Built<'py> {
    event: Bound<'py, PyAny>,
    hash: Bound<'py, PyString>,
    line: Option<Vec<u8>>,
}

impl AuditChain {
    #[allow(clippy::too_many_arguments)]
    fn build<'py>(
        &self,
        py: Python<'py>,
        want_line: bool,
        sequence_number: &Bound<'py, PyAny>,
        auth: Auth<'py>,
        event_id: Option<Bound<'py, PyAny>>,
        timestamp_us: Option<i64>,
        tool_timestamp_us: Option<i64>,
    ) -> PyResult<Built<'py>> {
        let ts_us = match timestamp_us {
            Some(t) => t,
            None => event::now_us(),
        };
        let tool_us = tool_timestamp_us.unwrap_or(ts_us);
        let ts = iso(ts_us)?;
        let tool = iso(tool_us)?;
        let event_id = match event_id {
            Some(e) => e.cast_into::<PyString>()?,
            None => {
                let mut rnd = [0u8; 10];
                event::random_bytes(&mut rnd).map_err(|e| {
                    PyOSError::new_err(format!("reading operating-system randomness: {e}"))
                })?;
                PyString::new(py, &event::uuid7(ts_us.max(0) as u64 / 1000, &rnd))
            }
        };
        let data_json = auth.encode(&tool)?;
        let seq = seq_text(sequence_number)?;
        let id_text = event_id.to_str()?;
        let head = core::EntryHead {
            event_id: id_text,
            timestamp: &ts,
            sequence_number: &seq,
            previous_hash: &self.head_text,
        };
        let mut c = Vec::with_capacity(data_json.len() + 256);
        core::canonical_entry(&mut c, &head, &data_json);
        let h = self.alg.tagged_hex(&c);
        let merkle_index = self.leaves.len();
        let line = if want_line {
            let mut line = Vec::with_capacity(c.len() + 100);
            core::entry_line(&mut line, &head, &data_json, &h, Some(merkle_index as i64));
            Some(line)
        } else {
            None
        };
        let hash = PyString::new(py, &h);
        let cls = self.event_class.bind(py);
        let event = self.event_new.bind(py).call1((cls,))?;
        // Attribute by attribute (in the dataclass's field order), so the instance keeps
        // the class's shared-key dictionary layout (a fresh dict would be larger).
        event.setattr(intern!(py, "previous_hash"), self.head.bind(py))?;
        event.setattr(intern!(py, "event_id"), &event_id)?;
        event.setattr(intern!(py, "sequence_number"), sequence_number)?;
        event.setattr(intern!(py, "event_hash"), &hash)?;
        event.setattr(intern!(py, "merkle_index"), merkle_index)?;
        event.setattr(intern!(py, "_lazy"), auth.record(py, ts_us, tool_us)?)?;
        Ok(Built { event, hash, line })
    }

    /// Advance the head to `hash` and retain `event`; returns an evicted event (dropped by
    /// the caller, after this method's borrow of the state ends).
    fn store(
        &mut self,
        py: Python<'_>,
        event: &Bound<'_, PyAny>,
        hash: &Bound<'_, PyString>,
        leaf: bool,
    ) -> PyResult<Option<Py<PyAny>>> {
        let text = hash.to_str()?.to_owned();
        let mut evicted = None;
        if let Some(max) = self.max_events {
            if self.events.len() >= max {
                if let Some(old) = self.events.pop_front() {
                    let h = old.bind(py).getattr(intern!(py, "event_hash"))?;
                    self.base = h.cast_into::<PyString>()?.unbind();
                    self.dropped += 1;
                    evicted = Some(old);
                }
            }
        }
        self.events.push_back(event.clone().unbind());
        if leaf {
            self.leaves.push(hash.clone().unbind());
        }
        self.head = hash.clone().unbind();
        self.head_text = text;
        self.length += 1;
        Ok(evicted)
    }
}

fn opt_any<'py>(py: Python<'py>, v: Option<Bound<'py, PyAny>>) -> Bound<'py, PyAny> {
    v.unwrap_or_else(|| py.None().into_bound(py))
}

#[allow(clippy::too_many_arguments)]
fn auth_args<'py>(
    py: Python<'py>,
    user_id: Bound<'py, PyAny>,
    user_roles: &Bound<'py, PyAny>,
    tool_name: Bound<'py, PyAny>,
    tool_arguments: &Bound<'py, PyAny>,
    allowed: Bound<'py, PyAny>,
    reason: Option<Bound<'py, PyAny>>,
    policies_evaluated: Option<Bound<'py, PyAny>>,
    session_id: Option<Bound<'py, PyAny>>,
    user_attributes: Option<Bound<'py, PyAny>>,
    agent_id: Option<Bound<'py, PyAny>>,
    agent_capabilities: Option<Bound<'py, PyAny>>,
    agent_trust_score: Option<Bound<'py, PyAny>>,
    execution_result: Option<Bound<'py, PyAny>>,
) -> PyResult<Auth<'py>> {
    // The original's copies, in its order (`_authorization_data`).
    let roles = copy_list(Some(user_roles), false)?;
    let attributes = copy_dict(user_attributes.as_ref(), true)?;
    let capabilities = copy_list(agent_capabilities.as_ref(), true)?;
    let arguments = copy_dict(Some(tool_arguments), false)?;
    let policies = copy_list(policies_evaluated.as_ref(), true)?;
    let policies = opt_any(py, policies);
    Ok(Auth {
        user_id,
        roles: opt_any(py, roles),
        session_id: opt_any(py, session_id),
        attributes: opt_any(py, attributes),
        agent_id: opt_any(py, agent_id),
        capabilities: opt_any(py, capabilities),
        trust_score: opt_any(py, agent_trust_score),
        tool_name,
        arguments: opt_any(py, arguments),
        allowed,
        reason: opt_any(py, reason),
        policies,
        execution_result: opt_any(py, execution_result),
    })
}

#[pymethods]
impl AuditChain {
    #[new]
    #[pyo3(signature = (event_class, algorithm = "sha256", max_events = None))]
    fn new(
        py: Python<'_>,
        event_class: &Bound<'_, PyAny>,
        algorithm: &str,
        max_events: Option<usize>,
    ) -> PyResult<Self> {
        let a = alg(algorithm)?;
        if max_events == Some(0) {
            return Err(PyValueError::new_err(
                "max_events must be a positive int or None, got 0",
            ));
        }
        let genesis = PyString::new(py, a.genesis()).unbind();
        Ok(AuditChain {
            alg: a,
            event_class: event_class.clone().unbind(),
            event_new: event_class.getattr(intern!(py, "__new__"))?.unbind(),
            head: genesis.clone_ref(py),
            head_text: a.genesis().to_string(),
            base: genesis.clone_ref(py),
            genesis,
            length: 0,
            dropped: 0,
            max_events,
            events: VecDeque::new(),
            leaves: Vec::new(),
        })
    }

    /// Hash algorithm name.
    #[getter]
    fn algorithm(&self) -> &'static str {
        self.alg.name()
    }

    /// `previous_hash` of the first entry.
    #[getter]
    fn genesis(&self, py: Python<'_>) -> Py<PyString> {
        self.genesis.clone_ref(py)
    }

    /// Hash of the last entry (the genesis hash when empty).
    #[getter]
    fn head(&self, py: Python<'_>) -> Py<PyString> {
        self.head.clone_ref(py)
    }

    /// Hash the first retained event links to.
    #[getter]
    fn base(&self, py: Python<'_>) -> Py<PyString> {
        self.base.clone_ref(py)
    }

    /// Entries appended (retained or not).
    #[getter]
    fn length(&self) -> u64 {
        self.length
    }

    /// Entries no longer retained.
    #[getter]
    fn dropped(&self) -> u64 {
        self.dropped
    }

    #[getter]
    fn max_events(&self) -> Option<usize> {
        self.max_events
    }

    /// Leaves of the current Merkle batch.
    #[getter]
    fn leaf_count(&self) -> usize {
        self.leaves.len()
    }

    /// The retained events, oldest first.
    fn events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.events.iter().map(|e| e.bind(py)))
    }

    /// The event at chain position `index` (0-based), or None (also when not retained).
    fn event(&self, py: Python<'_>, index: i64) -> Option<Py<PyAny>> {
        let i = index.checked_sub(self.dropped as i64)?;
        usize::try_from(i)
            .ok()
            .and_then(|i| self.events.get(i))
            .map(|e| e.clone_ref(py))
    }

    /// Retain an already-hashed `event` and advance the head to its `event_hash`.
    fn push(&mut self, py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<()> {
        let h = event.getattr(intern!(py, "event_hash"))?;
        let h = h.cast_into::<PyString>()?;
        let evicted = self.store(py, event, &h, false)?;
        drop(evicted);
        Ok(())
    }

    /// Add a leaf to the current Merkle batch; returns its index in the batch.
    fn add_leaf(&mut self, leaf: Bound<'_, PyString>) -> usize {
        self.leaves.push(leaf.unbind());
        self.leaves.len() - 1
    }

    /// Remove and return the leaves of the current batch.
    fn take_leaves<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let leaves = std::mem::take(&mut self.leaves);
        PyList::new(py, leaves.iter().map(|l| l.bind(py)))
    }

    /// Continue a chain whose head (written earlier, e.g. on disk) is `head`, `length`
    /// entries long: no event is retained and the Merkle batch is emptied.
    fn resume(&mut self, head: Bound<'_, PyString>, length: u64) -> PyResult<()> {
        self.head_text = head.to_str()?.to_owned();
        self.base = head.clone().unbind();
        self.head = head.unbind();
        let events = std::mem::take(&mut self.events);
        let leaves = std::mem::take(&mut self.leaves);
        self.length = length;
        self.dropped = length;
        drop((events, leaves));
        Ok(())
    }

    /// Build, hash and chain one authorization entry; returns its event (an instance of
    /// `event_class` whose `data` and `timestamp` are materialised on first access).
    /// Arguments as `AuditLogger.log_authorization`, after the sequence number; the
    /// keyword-only ones fix the id and times (microseconds since the epoch) for tests.
    #[pyo3(signature = (
        sequence_number, user_id, user_roles, tool_name, tool_arguments, allowed,
        reason = None, policies_evaluated = None, session_id = None, user_attributes = None,
        agent_id = None, agent_capabilities = None, agent_trust_score = None,
        execution_result = None, *, event_id = None, timestamp_us = None,
        tool_timestamp_us = None
    ))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn append_authorization<'py>(
        &mut self,
        py: Python<'py>,
        sequence_number: &Bound<'py, PyAny>,
        user_id: Bound<'py, PyAny>,
        user_roles: &Bound<'py, PyAny>,
        tool_name: Bound<'py, PyAny>,
        tool_arguments: &Bound<'py, PyAny>,
        allowed: Bound<'py, PyAny>,
        reason: Option<Bound<'py, PyAny>>,
        policies_evaluated: Option<Bound<'py, PyAny>>,
        session_id: Option<Bound<'py, PyAny>>,
        user_attributes: Option<Bound<'py, PyAny>>,
        agent_id: Option<Bound<'py, PyAny>>,
        agent_capabilities: Option<Bound<'py, PyAny>>,
        agent_trust_score: Option<Bound<'py, PyAny>>,
        execution_result: Option<Bound<'py, PyAny>>,
        event_id: Option<Bound<'py, PyAny>>,
        timestamp_us: Option<i64>,
        tool_timestamp_us: Option<i64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let auth = auth_args(
            py,
            user_id,
            user_roles,
            tool_name,
            tool_arguments,
            allowed,
            reason,
            policies_evaluated,
            session_id,
            user_attributes,
            agent_id,
            agent_capabilities,
            agent_trust_score,
            execution_result,
        )?;
        let b = self.build(
            py,
            false,
            sequence_number,
            auth,
            event_id,
            timestamp_us,
            tool_timestamp_us,
        )?;
        let evicted = self.store(py, &b.event, &b.hash, true)?;
        drop(evicted);
        Ok(b.event)
    }

    /// As `append_authorization`, and queue the entry's JSONL line on `writer` (an
    /// `AuditFileWriter`, or any object with `enqueue(bytes) -> int`) before the chain
    /// advances. Returns `(event, ticket)`; commit the ticket on the writer.
    #[pyo3(signature = (
        writer, sequence_number, user_id, user_roles, tool_name, tool_arguments, allowed,
        reason = None, policies_evaluated = None, session_id = None, user_attributes = None,
        agent_id = None, agent_capabilities = None, agent_trust_score = None,
        execution_result = None, *, event_id = None, timestamp_us = None,
        tool_timestamp_us = None
    ))]
    #[allow(clippy::too_many_arguments)] // the Python signature
    fn write_authorization<'py>(
        &mut self,
        py: Python<'py>,
        writer: &Bound<'py, PyAny>,
        sequence_number: &Bound<'py, PyAny>,
        user_id: Bound<'py, PyAny>,
        user_roles: &Bound<'py, PyAny>,
        tool_name: Bound<'py, PyAny>,
        tool_arguments: &Bound<'py, PyAny>,
        allowed: Bound<'py, PyAny>,
        reason: Option<Bound<'py, PyAny>>,
        policies_evaluated: Option<Bound<'py, PyAny>>,
        session_id: Option<Bound<'py, PyAny>>,
        user_attributes: Option<Bound<'py, PyAny>>,
        agent_id: Option<Bound<'py, PyAny>>,
        agent_capabilities: Option<Bound<'py, PyAny>>,
        agent_trust_score: Option<Bound<'py, PyAny>>,
        execution_result: Option<Bound<'py, PyAny>>,
        event_id: Option<Bound<'py, PyAny>>,
        timestamp_us: Option<i64>,
        tool_timestamp_us: Option<i64>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let auth = auth_args(
            py,
            user_id,
            user_roles,
            tool_name,
            tool_arguments,
            allowed,
            reason,
            policies_evaluated,
            session_id,
            user_attributes,
            agent_id,
            agent_capabilities,
            agent_trust_score,
            execution_result,
        )?;
        let b = self.build(
            py,
            true,
            sequence_number,
            auth,
            event_id,
            timestamp_us,
            tool_timestamp_us,
        )?;
        let line = b.line.as_deref().unwrap_or_default();
        let ticket = match writer.cast::<AuditFileWriter>() {
            Ok(w) => w
                .get()
                .inner
                .enqueue(line)
                .map_err(write_err)?
                .into_pyobject(py)?
                .into_any(),
            Err(_) => writer.call_method1(intern!(py, "enqueue"), (PyBytes::new(py, line),))?,
        };
        let evicted = self.store(py, &b.event, &b.hash, true)?;
        drop(evicted);
        Ok((b.event, ticket))
    }

    fn __repr__(&self) -> String {
        format!(
            "AuditChain(algorithm='{}', length={}, retained={})",
            self.alg.name(),
            self.length,
            self.events.len()
        )
    }
}

/// Hook run in a child process after `os.fork()`: the randomness block inherited from the
/// parent is discarded (event ids stay unique across forked workers).
#[pyfunction]
fn _audit_after_fork() {
    event::note_fork();
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let hook = wrap_pyfunction!(_audit_after_fork, m)?;
    let kwargs = PyDict::new(m.py());
    kwargs.set_item("after_in_child", hook)?;
    m.py()
        .import("os")?
        .getattr("register_at_fork")?
        .call((), Some(&kwargs))?;
    m.add("AUDIT_GENESIS_HASH", core::GENESIS_SHA256)?;
    m.add_function(wrap_pyfunction!(canonical_json, m)?)?;
    m.add_function(wrap_pyfunction!(audit_event_hash, m)?)?;
    m.add_function(wrap_pyfunction!(audit_event_line, m)?)?;
    m.add_function(wrap_pyfunction!(audit_verify_files, m)?)?;
    m.add_class::<AuditFileWriter>()?;
    m.add_class::<MerkleLog>()?;
    m.add_function(wrap_pyfunction!(merkle_leaf_hash, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_verify_inclusion, m)?)?;
    m.add_function(wrap_pyfunction!(merkle_verify_consistency, m)?)?;
    m.add_class::<AuditChain>()?;
    m.add_function(wrap_pyfunction!(audit_authorization_hash, m)?)?;
    m.add_function(wrap_pyfunction!(audit_merkle_root, m)?)?;
    Ok(())
}
