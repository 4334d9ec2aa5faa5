//! Bindings of the corpus reader and the output rows (`reader`, `output`): conversion, GIL
//! release, signals. No parsing or formatting lives here.

use std::os::unix::ffi::OsStringExt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use numpy::PyReadonlyArray1;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyString};

use crate::output::{self, Ids};
use crate::reader::{
    Chunk, ChunkStream, Compression, Entry, Format, Id, Input, Next, ReadOptions, State,
};

/// Lines of the input files in chunks, read, decompressed and parsed by a background thread.
/// Iterating gives [`ChunkCore`]s; an input that cannot be read or decompressed raises
/// `TextsieveError` naming it.
#[pyclass(module = "textsieve._core")]
pub struct ChunkReader {
    stream: Mutex<Option<ChunkStream>>,
}

#[pymethods]
impl ChunkReader {
    /// `inputs`: (path as bytes, name as bytes, "jsonl" or "text", "gzip", "zstd" or None).
    #[new]
    #[pyo3(signature = (inputs, text_field, id_field, chunk_docs, chunk_bytes, max_record, depth=2))]
    fn new(
        inputs: Vec<(PyBackedBytes, PyBackedBytes, String, Option<String>)>,
        text_field: String,
        id_field: Option<String>,
        chunk_docs: usize,
        chunk_bytes: usize,
        max_record: usize,
        depth: usize,
    ) -> PyResult<Self> {
        let inputs = inputs
            .into_iter()
            .map(|(path, label, format, compression)| {
                let format = match format.as_str() {
                    "jsonl" => Format::Jsonl,
                    "text" => Format::Text,
                    other => {
                        return Err(PyValueError::new_err(format!(
                            "format: cannot read {other:?} in the core"
                        )))
                    }
                };
                let compression = match compression.as_deref() {
                    None => Compression::Plain,
                    Some("gzip") => Compression::Gzip,
                    Some("zstd") => Compression::Zstd,
                    Some(other) => {
                        return Err(PyValueError::new_err(format!(
                            "compression: unknown {other:?}"
                        )))
                    }
                };
                Ok(Input {
                    path: std::ffi::OsString::from_vec(path.to_vec()).into(),
                    label: Arc::from(&label[..]),
                    format,
                    compression,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        let opts = ReadOptions {
            text_field,
            id_field,
            chunk_docs: chunk_docs.max(1),
            chunk_bytes: chunk_bytes.max(1),
            max_record: max_record.max(1),
        };
        Ok(ChunkReader {
            stream: Mutex::new(Some(ChunkStream::start(inputs, opts, depth).map_err(
                |e| {
                    super::errors::TextsieveError::new_err(format!(
                        "cannot start the reader thread: {e}"
                    ))
                },
            )?)),
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next chunk; waits for the reader with the GIL released, Ctrl-C still working.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<ChunkCore>> {
        loop {
            let got = py.detach(|| match self.stream.lock() {
                Ok(guard) => match guard.as_ref() {
                    Some(stream) => stream.next_within(Duration::from_millis(100)),
                    None => Next::End,
                },
                Err(_) => Next::End,
            });
            match got {
                Next::Waiting => py.check_signals()?,
                Next::End => return Ok(None),
                Next::Item(Ok(chunk)) => return Ok(Some(ChunkCore { inner: chunk })),
                Next::Item(Err(e)) => {
                    self.close();
                    return Err(super::errors::TextsieveError::new_err(e.message));
                }
            }
        }
    }

    /// Stops the reader thread (also when the reader is dropped).
    fn close(&self) {
        if let Ok(mut guard) = self.stream.lock() {
            guard.take();
        }
    }
}

/// Consecutive records of one file: documents, and deferred lines for the caller to judge.
#[pyclass(module = "textsieve._core")]
pub struct ChunkCore {
    pub(crate) inner: Chunk,
}

#[pymethods]
impl ChunkCore {
    /// A chunk of records read by Python (`raws`: each record as written to an output corpus).
    #[staticmethod]
    fn from_records(
        file: usize,
        label: PyBackedBytes,
        lines: Vec<u64>,
        ids: Vec<PyBackedBytes>,
        texts: Vec<String>,
        raws: Vec<PyBackedBytes>,
    ) -> PyResult<Self> {
        let n = lines.len();
        if ids.len() != n || texts.len() != n || raws.len() != n {
            return Err(PyValueError::new_err(
                "lines, ids, texts and raws differ in length",
            ));
        }
        let mut c = Chunk::new(file, Arc::from(&label[..]));
        for (((line, id), text), raw) in lines.into_iter().zip(ids).zip(texts).zip(raws) {
            let start = c.raw.len();
            c.raw.extend_from_slice(&raw);
            let a = c.ids.len() as u32;
            c.ids.extend_from_slice(&id);
            c.entries.push(Entry {
                start,
                end: c.raw.len(),
                line,
                id: Id::Given(a, c.ids.len() as u32),
                text,
                state: State::Doc,
                at: None,
            });
        }
        Ok(ChunkCore { inner: c })
    }

    #[getter]
    fn file(&self) -> usize {
        self.inner.file
    }

    #[getter]
    fn n_bytes(&self) -> u64 {
        self.inner.n_bytes
    }

    #[getter]
    fn n_blank(&self) -> u64 {
        self.inner.n_blank
    }

    #[getter]
    fn last(&self) -> bool {
        self.inner.last
    }

    fn __len__(&self) -> usize {
        self.inner.entries.len()
    }

    /// Lines left to the caller: (entry, line number, bytes, reason or None).
    fn deferred<'py>(
        &self,
        py: Python<'py>,
    ) -> Vec<(usize, u64, Bound<'py, PyBytes>, Option<String>)> {
        self.inner
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match &e.state {
                State::Deferred(reason) => Some((
                    i,
                    e.line,
                    PyBytes::new(py, self.inner.record(i)),
                    reason.clone(),
                )),
                _ => None,
            })
            .collect()
    }

    /// Makes deferred entry `i` a document.
    fn resolve(&mut self, i: usize, text: String, id: Vec<u8>) -> PyResult<()> {
        match self.inner.entries.get(i).map(|e| &e.state) {
            Some(State::Deferred(_)) => {
                self.inner.resolve(i, text, &id);
                Ok(())
            }
            _ => Err(PyIndexError::new_err(format!("entry {i} is not deferred"))),
        }
    }

    /// The documents' texts (of a sealed chunk), for a caller that needs only them.
    fn texts(&self) -> Vec<&str> {
        self.inner
            .entries
            .iter()
            .filter(|e| matches!(e.state, State::Doc))
            .map(|e| e.text.as_str())
            .collect()
    }

    /// Drops the deferred entries not resolved; the entries are then the documents.
    fn seal(&mut self) {
        self.inner.seal();
    }
}

/// Every document's id, packed. A lock inside (not Python's borrow flags): a writer thread can
/// render rows with the GIL released while the main thread adds the next chunk's ids.
#[pyclass(frozen, module = "textsieve._core")]
#[derive(Default)]
pub struct IdsCore {
    pub(crate) inner: RwLock<Ids>,
}

impl IdsCore {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Ids> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Ids> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[pymethods]
impl IdsCore {
    #[new]
    fn new() -> Self {
        IdsCore::default()
    }

    /// The ids of a sealed chunk's documents.
    fn push_chunk(&self, chunk: &ChunkCore) {
        self.write().push_chunk(&chunk.inner);
    }

    /// Ids given as `bytes` (UTF-8, lone surrogates as `surrogatepass` writes them).
    fn extend(&self, ids: Vec<PyBackedBytes>) {
        let mut w = self.write();
        for id in ids {
            w.push(&id);
        }
    }

    fn __len__(&self) -> usize {
        self.read().len()
    }

    fn __getitem__<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        let ids = self.read();
        let b = ids
            .get(i)
            .ok_or_else(|| PyIndexError::new_err(format!("no document {i}")))?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(PyString::new(py, s).into_any()),
            Err(_) => PyBytes::new(py, b).call_method1("decode", ("utf-8", "surrogatepass")),
        }
    }

    /// Bytes held.
    fn nbytes(&self) -> usize {
        self.read().bytes()
    }
}

/// Kept records, removed rows, pair rows, and removed documents whose id is their kept one's.
type Rows<'py> = (
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    Bound<'py, PyBytes>,
    usize,
);

/// The output lines of a sealed chunk numbered from `first`: (kept records, removed rows, pair
/// rows, removed documents whose id is their kept document's); with `annotate`, every record
/// with its decision comes first instead of the kept ones.
#[pyfunction]
#[pyo3(signature = (chunk, first, duplicate_of, similarity, ids, pair_rows, annotate=false))]
#[allow(clippy::too_many_arguments)]
fn render_chunk<'py>(
    py: Python<'py>,
    chunk: &ChunkCore,
    first: usize,
    duplicate_of: PyReadonlyArray1<'py, i64>,
    similarity: PyReadonlyArray1<'py, f64>,
    ids: &IdsCore,
    pair_rows: bool,
    annotate: bool,
) -> PyResult<Rows<'py>> {
    let dup = duplicate_of.as_slice()?;
    let sim = similarity.as_slice()?;
    if dup.len() != chunk.inner.entries.len() || sim.len() != dup.len() {
        return Err(PyValueError::new_err(format!(
            "{} decisions for a chunk of {} documents",
            dup.len(),
            chunk.inner.entries.len()
        )));
    }
    let c = &chunk.inner;
    let r =
        py.detach(|| output::render_chunk(c, first, dup, sim, &ids.read(), pair_rows, annotate));
    Ok((
        PyBytes::new(py, &r.kept),
        PyBytes::new(py, &r.removed),
        PyBytes::new(py, &r.pairs),
        r.n_same_id,
    ))
}

/// Rows `{"id_a", "id_b", "jaccard"}` for verified pairs.
#[pyfunction]
fn render_pairs<'py>(
    py: Python<'py>,
    ids: &IdsCore,
    i: PyReadonlyArray1<'py, u64>,
    j: PyReadonlyArray1<'py, u64>,
    jaccard: PyReadonlyArray1<'py, f64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = output::render_pairs(
        &ids.read(),
        i.as_slice()?,
        j.as_slice()?,
        jaccard.as_slice()?,
    );
    Ok(PyBytes::new(py, &out))
}

/// One record (bytes of a JSON object) with its decision added, as `render_chunk(...,
/// annotate=True)` writes it: `duplicate_of` is the kept document's id (None: kept).
#[pyfunction]
#[pyo3(signature = (record, cluster, duplicate_of, jaccard))]
fn annotate_record<'py>(
    py: Python<'py>,
    record: &[u8],
    cluster: u64,
    duplicate_of: Option<PyBackedBytes>,
    jaccard: f64,
) -> Bound<'py, PyBytes> {
    let quoted = duplicate_of.map(|id| {
        let mut q = Vec::new();
        output::push_quoted(&id, &mut q);
        q
    });
    let mut out = Vec::with_capacity(record.len() + 96);
    output::push_annotated(record, cluster, quoted.as_deref(), jaccard, &mut out);
    PyBytes::new(py, &out)
}

/// A JSON string literal as textsieve's outputs write it (`bytes`: UTF-8, surrogatepass).
#[pyfunction]
fn quote_json<'py>(py: Python<'py>, s: PyBackedBytes) -> Bound<'py, PyString> {
    let mut out = Vec::new();
    output::push_quoted(&s, &mut out);
    PyString::new(py, std::str::from_utf8(&out).unwrap_or_default())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<ChunkReader>()?;
    m.add_class::<ChunkCore>()?;
    m.add_class::<IdsCore>()?;
    m.add_function(wrap_pyfunction!(render_chunk, m)?)?;
    m.add_function(wrap_pyfunction!(render_pairs, m)?)?;
    m.add_function(wrap_pyfunction!(quote_json, m)?)?;
    m.add_function(wrap_pyfunction!(annotate_record, m)?)?;
    Ok(())
}
