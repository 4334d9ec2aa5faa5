//! Bindings of the on-disk dedup index (`crate::index`): conversion, GIL release, error
//! mapping. The manifest, lock and commit live in `textsieve.index`; no algorithm lives here.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{IntoPyArray, PyArray1};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyInt, PyList, PyString};

use super::convert::{arg, extract_texts, Surrogates};
use super::dedup::DedupConfig;
use crate::index::{Batch, Fed, Id, Segment, Snapshot};
use crate::parallel::with_threads;

fn extract_ids(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Id>> {
    let list = obj.cast::<PyList>()?;
    let mut out = Vec::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        if let Ok(s) = v.cast::<PyString>() {
            out.push(Id::Str(s.to_str()?.to_string()));
        } else if v.is_instance_of::<PyInt>() && !v.is_instance_of::<pyo3::types::PyBool>() {
            let x: i64 = v.extract().map_err(|_| {
                super::errors::invalid_argument(
                    "ids",
                    format!("ids[{i}]: an int id must fit in 64 bits"),
                )
            })?;
            out.push(Id::Int(x));
        } else {
            return Err(PyTypeError::new_err(format!(
                "ids[{i}]: expected str or int, got {}",
                v.get_type().name()?
            )));
        }
    }
    Ok(out)
}

fn id_object<'py>(py: Python<'py>, id: &Id) -> PyResult<Bound<'py, PyAny>> {
    Ok(match id {
        Id::Int(v) => v.into_pyobject(py)?.into_any(),
        Id::Str(s) => PyString::new(py, s).into_any(),
    })
}

/// Decisions as a dict of arrays: duplicate_of, similarity, examined, empty.
fn decisions<'py>(
    py: Python<'py>,
    dec: &[crate::greedy::Decision],
    empty: Vec<bool>,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let dup: Vec<i64> = dec
        .iter()
        .map(|x| x.duplicate_of.map_or(-1, i64::from))
        .collect();
    d.set_item("duplicate_of", dup.into_pyarray(py))?;
    let sim: Vec<f64> = dec.iter().map(|x| x.similarity).collect();
    d.set_item("similarity", sim.into_pyarray(py))?;
    let ex: Vec<u32> = dec.iter().map(|x| x.examined).collect();
    d.set_item("examined", ex.into_pyarray(py))?;
    d.set_item("empty", empty.into_pyarray(py))?;
    Ok(d)
}

/// What a batch decided, as `decisions`, after a check for Ctrl-C.
fn fed_dict(py: Python<'_>, fed: Option<Fed>) -> PyResult<Option<Bound<'_, PyDict>>> {
    py.check_signals()?;
    fed.map(|(dec, empty)| decisions(py, &dec, empty))
        .transpose()
}

/// One segment file, memory-mapped.
#[pyclass(frozen, module = "textsieve._core")]
pub struct SegmentCore {
    inner: Arc<Segment>,
}

#[pymethods]
impl SegmentCore {
    /// Opens a segment of an index with these settings; `verify` checks every checksum.
    #[staticmethod]
    #[pyo3(signature = (path, config, verify=true))]
    fn open(py: Python<'_>, path: PathBuf, config: &DedupConfig, verify: bool) -> PyResult<Self> {
        let cfg = &config.inner;
        let fp = crate::index::settings_fingerprint(cfg);
        let seg = py.detach(|| Segment::open(&path, cfg.bands, fp, verify))?;
        Ok(SegmentCore {
            inner: Arc::new(seg),
        })
    }

    /// Documents in the segment.
    #[getter]
    fn n(&self) -> usize {
        self.inner.n
    }

    #[getter]
    fn bytes(&self) -> u64 {
        self.inner.bytes
    }

    #[getter]
    fn header_crc(&self) -> u32 {
        self.inner.header_crc
    }

    #[getter]
    fn first(&self) -> u32 {
        self.inner.first
    }

    #[getter]
    fn last(&self) -> u32 {
        self.inner.last
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path.clone()
    }
}

/// One committed state of an index: its segments and tombstones (immutable, shared by
/// queries).
#[pyclass(frozen, module = "textsieve._core")]
pub struct SnapshotCore {
    inner: Arc<Snapshot>,
}

#[pymethods]
impl SnapshotCore {
    #[new]
    fn new(
        config: &DedupConfig,
        segments: Vec<PyRef<'_, SegmentCore>>,
        tombstones: Vec<u32>,
        n_docs: u32,
    ) -> Self {
        let segs = segments.iter().map(|s| s.inner.clone()).collect();
        SnapshotCore {
            inner: Arc::new(Snapshot::new(
                config.inner.clone(),
                segs,
                tombstones,
                n_docs,
            )),
        }
    }

    /// Live (kept, not removed) documents.
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Documents numbered so far (kept or not).
    #[getter]
    fn n_docs(&self) -> u32 {
        self.inner.n_docs
    }

    #[getter]
    fn segments(&self) -> Vec<SegmentCore> {
        self.inner
            .segments
            .iter()
            .map(|s| SegmentCore { inner: s.clone() })
            .collect()
    }

    #[getter]
    fn tombstones<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.inner.tombstones.clone().into_pyarray(py)
    }

    /// Every live document within the threshold of each text: `[[(doc, id, jaccard)]]`, best
    /// first.
    #[pyo3(signature = (texts, num_threads=None, errors="strict"))]
    fn query_many<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
        errors: &str,
    ) -> PyResult<Bound<'py, PyList>> {
        let texts = extract_texts(texts, "texts", Surrogates::parse(errors)?)?;
        let snap = &self.inner;
        let hits = py.detach(|| {
            with_threads(num_threads, || {
                let hits = snap.query_many(&texts);
                hits.into_iter()
                    .map(|h| {
                        h.into_iter()
                            .map(|(d, j)| Ok((d, snap.id(d)?, j)))
                            .collect::<crate::error::Result<Vec<_>>>()
                    })
                    .collect::<crate::error::Result<Vec<_>>>()
            })
        })??;
        py.check_signals()?;
        let out = PyList::empty(py);
        for h in hits {
            let row = PyList::empty(py);
            for (d, id, j) in h {
                row.append((d, id_object(py, &id)?, j))?;
            }
            out.append(row)?;
        }
        Ok(out)
    }

    /// The live documents with one of these ids (sorted numbers).
    fn docs_with_ids<'py>(
        &self,
        py: Python<'py>,
        ids: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<u32>>> {
        let ids = extract_ids(ids)?;
        let snap = &self.inner;
        let docs = py.detach(|| with_threads(None, || snap.docs_with_ids(&ids)))??;
        Ok(docs.into_pyarray(py))
    }

    /// Up to `count` live documents numbered from `start`: `[(doc, id, text)]`.
    fn documents<'py>(
        &self,
        py: Python<'py>,
        start: u32,
        count: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let snap = &self.inner;
        let docs = py.detach(|| snap.documents(start, count))?;
        let out = PyList::empty(py);
        for (d, id, t) in docs {
            out.append((d, id_object(py, &id)?, t))?;
        }
        Ok(out)
    }

    /// Writes the live documents of segments `start..end` into one segment at `path`.
    fn compact_into(
        &self,
        py: Python<'_>,
        start: usize,
        end: usize,
        path: PathBuf,
    ) -> PyResult<Option<SegmentCore>> {
        let snap = &self.inner;
        if start > end || end > snap.segments.len() {
            return Err(super::errors::invalid_argument(
                "end",
                "segment range out of bounds",
            ));
        }
        let seg = py.detach(|| with_threads(None, || snap.compact_into(start..end, &path)))??;
        Ok(seg.map(|s| SegmentCore { inner: Arc::new(s) }))
    }

    /// The ids of indexed documents (by number).
    fn ids_of<'py>(&self, py: Python<'py>, docs: Vec<u32>) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        for d in docs {
            out.append(id_object(py, &self.inner.id(d)?)?)?;
        }
        Ok(out)
    }

    /// A new add (or check) against this state. An add (`write=True`) begins its segment in
    /// `spill_dir` (default: the system's temporary folder; give the index's folder, where
    /// `write` names it) and writes kept texts there as they are kept. `write=False`: the
    /// batch only decides (a check), its kept texts are not compressed and go to an unlinked
    /// file in `spill_dir` past 64 MB.
    #[pyo3(signature = (spill_dir=None, write=true))]
    fn batch(&self, spill_dir: Option<PathBuf>, write: bool) -> BatchCore {
        let dir = spill_dir.unwrap_or_else(std::env::temp_dir);
        BatchCore {
            inner: Batch::new(self.inner.clone(), &dir, write),
        }
    }
}

/// An add (or check) in progress.
#[pyclass(module = "textsieve._core")]
pub struct BatchCore {
    inner: Batch,
}

impl BatchCore {
    fn feed_later<'py, S: AsRef<str> + Send + Sync + 'static>(
        &mut self,
        py: Python<'py>,
        texts: Vec<S>,
        ids: Vec<Id>,
        num_threads: Option<usize>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let batch = &mut self.inner;
        let fed = py.detach(|| with_threads(num_threads, || batch.feed_later(texts, ids)))??;
        fed_dict(py, fed)
    }
}

#[pymethods]
impl BatchCore {
    /// Feeds the next texts and decides the texts fed before them (while these are signed and
    /// looked up in the index): a dict of arrays (duplicate_of, similarity, examined, empty)
    /// for those, or None after the first call. `flush` decides the last texts fed.
    #[pyo3(signature = (texts, ids, num_threads=None, errors="strict"))]
    fn feed<'py>(
        &mut self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        ids: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
        errors: &str,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let texts = extract_texts(texts, "texts", Surrogates::parse(errors)?)?;
        let ids = extract_ids(ids)?;
        self.feed_later(py, texts, ids, num_threads)
    }

    /// `feed` for the documents of sealed chunks from the reader, in order (their texts move
    /// into the batch; their ids are the records' ids). A few chunks at once make one lookup
    /// pass over the index's filters.
    #[pyo3(signature = (chunks, num_threads=None))]
    fn feed_chunks<'py>(
        &mut self,
        py: Python<'py>,
        chunks: Vec<PyRefMut<'py, super::reader::ChunkCore>>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let mut buf = Vec::new();
        let (mut texts, mut ids) = (Vec::new(), Vec::new());
        for mut chunk in chunks {
            ids.extend((0..chunk.inner.entries.len()).map(|i| {
                buf.clear();
                chunk.inner.push_id(i, &mut buf);
                Id::Str(String::from_utf8_lossy(&buf).into_owned())
            }));
            texts.extend(chunk.inner.take_texts().0);
        }
        self.feed_later(py, texts, ids, num_threads)
    }

    /// Decides the texts fed last (as `feed` returns them), or None when none wait.
    #[pyo3(signature = (num_threads=None))]
    fn flush<'py>(
        &mut self,
        py: Python<'py>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let batch = &mut self.inner;
        let fed = py.detach(|| with_threads(num_threads, || batch.flush()))??;
        fed_dict(py, fed)
    }

    /// Says that about `docs` documents will be fed in all: a hint that sizes the batch's
    /// tables of kept documents once (the decisions do not depend on it).
    fn expect(&mut self, docs: usize) {
        self.inner.expect(docs);
    }

    /// The text of a kept document (of this batch or of the index).
    fn text(&self, doc: u32) -> Option<String> {
        self.inner.text(doc)
    }

    /// Takes kept documents with their numbers, undecided (migration of an old index).
    fn import_docs(
        &mut self,
        py: Python<'_>,
        docs: Vec<u32>,
        texts: &Bound<'_, PyAny>,
        ids: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let texts = extract_texts(texts, "texts", Surrogates::Strict)?;
        let ids = extract_ids(ids)?;
        let batch = &mut self.inner;
        py.detach(|| with_threads(None, || batch.import(&docs, &texts, &ids)))??;
        Ok(())
    }

    /// Numbers documents up to `n_docs`.
    fn skip_to(&mut self, n_docs: u32) {
        self.inner.skip_to(n_docs);
    }

    /// Writes the kept documents as a segment (synced); None when none was kept.
    fn write(&self, py: Python<'_>, path: PathBuf) -> PyResult<Option<SegmentCore>> {
        let batch = &self.inner;
        let seg = py.detach(|| batch.write(&path))?;
        Ok(seg.map(|s| SegmentCore { inner: Arc::new(s) }))
    }

    /// The next document number.
    #[getter]
    fn next(&self) -> u32 {
        self.inner.next
    }

    /// Documents kept so far.
    #[getter]
    fn kept(&self) -> usize {
        self.inner.kept()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SegmentCore>()?;
    m.add_class::<SnapshotCore>()?;
    m.add_class::<BatchCore>()?;
    Ok(())
}
