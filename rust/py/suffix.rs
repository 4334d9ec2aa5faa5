//! Bindings of the suffix index (`suffix`): conversion, GIL release, error mapping. No
//! algorithm lives here.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::{PyIndexError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use super::convert::{arg, extract_texts, Arg, FromName, Named, Surrogates};
use super::errors::invalid_argument;
use super::reader::{ChunkCore, IdsCore};
use crate::parallel::with_threads;
use crate::suffix::records::{self, Records};
use crate::suffix::spans::{Policy, Span};
use crate::suffix::{sorted_batch, Builder, SuffixIndex, Width};

impl FromName for Policy {
    const ARG: &'static str = "policy";
    fn from_name(name: &str) -> crate::error::Result<Self> {
        Policy::parse(name)
    }
}

type Taken<T> = Mutex<Option<T>>;

fn gone() -> PyErr {
    PyRuntimeError::new_err("this builder has already been finished")
}

/// Documents gathered for a suffix index, and (for the command line) their records as read.
#[pyclass(frozen, module = "textsieve._core")]
pub struct SuffixBuilderCore {
    builder: Taken<Builder>,
    records: Taken<Records>,
}

#[pymethods]
impl SuffixBuilderCore {
    #[new]
    #[pyo3(signature = (keep_records=false))]
    fn new(keep_records: bool) -> Self {
        SuffixBuilderCore {
            builder: Mutex::new(Some(Builder::new())),
            records: Mutex::new(keep_records.then(Records::default)),
        }
    }

    /// Adds documents given as `str`.
    fn add_texts(&self, py: Python<'_>, texts: &Bound<'_, PyAny>) -> PyResult<()> {
        let texts = extract_texts(texts, "texts", Surrogates::Strict)?;
        let mut guard = self.builder.lock().map_err(|_| gone())?;
        let b = guard.as_mut().ok_or_else(gone)?;
        py.detach(|| {
            for t in &texts {
                b.push(t);
            }
        });
        Ok(())
    }

    /// Adds the documents of a sealed chunk (and their records, when kept).
    fn add_chunk(&self, py: Python<'_>, chunk: &ChunkCore) -> PyResult<()> {
        let mut guard = self.builder.lock().map_err(|_| gone())?;
        let b = guard.as_mut().ok_or_else(gone)?;
        let mut recs_guard = self.records.lock().map_err(|_| gone())?;
        let mut recs = recs_guard.as_mut();
        let c = &chunk.inner;
        py.detach(|| {
            for (i, e) in c.entries.iter().enumerate() {
                b.push(&e.text);
                if let Some(r) = recs.as_mut() {
                    r.push(c.record(i));
                }
            }
        });
        Ok(())
    }

    #[getter]
    fn n_docs(&self) -> PyResult<usize> {
        let guard = self.builder.lock().map_err(|_| gone())?;
        Ok(guard.as_ref().map_or(0, Builder::n_docs))
    }

    #[getter]
    fn n_bytes(&self) -> PyResult<usize> {
        let guard = self.builder.lock().map_err(|_| gone())?;
        Ok(guard.as_ref().map_or(0, Builder::n_bytes))
    }

    /// Sorts the suffixes (GIL released); `width`: None (as the size needs), 4 or 8.
    #[pyo3(signature = (width=None))]
    fn finish(&self, py: Python<'_>, width: Option<usize>) -> PyResult<SuffixIndexCore> {
        let b = self
            .builder
            .lock()
            .map_err(|_| gone())?
            .take()
            .ok_or_else(gone)?;
        let width = match width {
            None => None,
            Some(4) => Some(Width::U32),
            Some(8) => Some(Width::U64),
            Some(w) => {
                return Err(invalid_argument(
                    "width",
                    format!("must be 4 or 8, got {w}"),
                ))
            }
        };
        let idx = py.detach(|| match width {
            None => b.finish(),
            Some(w) => b.finish_as(w),
        })?;
        Ok(SuffixIndexCore {
            inner: Arc::new(idx),
        })
    }

    /// The records kept (see `keep_records`), moved out.
    fn take_records(&self) -> PyResult<RecordsCore> {
        let r = self.records.lock().map_err(|_| gone())?.take();
        Ok(RecordsCore {
            inner: r.ok_or_else(|| PyValueError::new_err("no records were kept"))?,
        })
    }
}

/// Records as read, for writing them back cleaned.
#[pyclass(frozen, module = "textsieve._core")]
pub struct RecordsCore {
    inner: Records,
}

fn spans_from<'py>(
    doc: &PyReadonlyArray1<'py, u64>,
    start: &PyReadonlyArray1<'py, u64>,
    end: &PyReadonlyArray1<'py, u64>,
) -> PyResult<Vec<Span>> {
    let (d, s, e) = (doc.as_slice()?, start.as_slice()?, end.as_slice()?);
    if s.len() != d.len() || e.len() != d.len() {
        return Err(PyValueError::new_err("doc, start and end differ in length"));
    }
    Ok((0..d.len())
        .map(|i| Span {
            doc: d[i] as usize,
            start: s[i] as usize,
            end: e[i] as usize,
        })
        .collect())
}

#[pymethods]
impl RecordsCore {
    fn __len__(&self) -> usize {
        self.inner.len()
    }

    /// Record `d` as read.
    fn record<'py>(&self, py: Python<'py>, d: usize) -> PyResult<Bound<'py, PyBytes>> {
        let r = self
            .inner
            .get(d)
            .ok_or_else(|| PyIndexError::new_err(format!("no record {d}")))?;
        Ok(PyBytes::new(py, r))
    }

    /// Bytes held.
    fn nbytes(&self) -> usize {
        self.inner.nbytes()
    }

    /// The cleaned records of documents `first..last` and the documents left out (see
    /// `textsieve.suffix`): (bytes, list of documents).
    #[allow(clippy::too_many_arguments)]
    fn render<'py>(
        &self,
        py: Python<'py>,
        index: &SuffixIndexCore,
        doc: PyReadonlyArray1<'py, u64>,
        start: PyReadonlyArray1<'py, u64>,
        end: PyReadonlyArray1<'py, u64>,
        first: usize,
        last: usize,
        text_field: &str,
    ) -> PyResult<(Bound<'py, PyBytes>, Vec<usize>)> {
        let spans = spans_from(&doc, &start, &end)?;
        let (idx, recs) = (&index.inner, &self.inner);
        let (out, failed) = py.detach(|| {
            records::render_cleaned(idx, recs, &spans, first..last.max(first), text_field)
        });
        Ok((PyBytes::new(py, &out), failed))
    }
}

/// The rows of a spans file for these spans.
#[pyfunction]
fn render_spans<'py>(
    py: Python<'py>,
    ids: &IdsCore,
    doc: PyReadonlyArray1<'py, u64>,
    start: PyReadonlyArray1<'py, u64>,
    end: PyReadonlyArray1<'py, u64>,
) -> PyResult<Bound<'py, PyBytes>> {
    let spans = spans_from(&doc, &start, &end)?;
    let ids = ids.inner.read().unwrap_or_else(|e| e.into_inner());
    let out = py.detach(|| records::render_spans(&ids, &spans));
    Ok(PyBytes::new(py, &out))
}

/// A suffix index, in memory or mapped from its directory.
#[pyclass(frozen, module = "textsieve._core")]
pub struct SuffixIndexCore {
    inner: Arc<SuffixIndex>,
}

fn text_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<String> {
    String::extract_arg(obj, name)
}

fn texts_arg(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<String>> {
    Vec::<String>::extract_arg(obj, name)
}

type NextRow<'py> = (usize, u64, Bound<'py, PyDict>);

/// `(length, total, {character: count})`: the dict built here, in one pass, since a batch of
/// contexts can hold millions of entries. `keys` keeps one Python string per character across
/// the rows of a batch: each is made (and its hash computed) once.
fn next_row<'py>(
    py: Python<'py>,
    nc: crate::suffix::NextCounts,
    keys: &mut rustc_hash::FxHashMap<char, Bound<'py, PyString>>,
) -> PyResult<NextRow<'py>> {
    let counts = PyDict::new(py);
    for (c, n) in nc.counts {
        let key = keys
            .entry(c)
            .or_insert_with(|| PyString::new(py, c.encode_utf8(&mut [0; 4])));
        counts.set_item(&*key, n)?;
    }
    Ok((nc.length, nc.total, counts))
}

#[pymethods]
impl SuffixIndexCore {
    /// Opens an index directory (files mapped into memory).
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let idx = py.detach(|| SuffixIndex::open(&path))?;
        Ok(SuffixIndexCore {
            inner: Arc::new(idx),
        })
    }

    /// Writes the index to a new directory (GIL released).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let idx = &self.inner;
        Ok(py.detach(|| idx.save(&path))?)
    }

    #[getter]
    fn n_docs(&self) -> usize {
        self.inner.n_docs()
    }

    #[getter]
    fn n_bytes(&self) -> usize {
        self.inner.n_bytes()
    }

    #[getter]
    fn n_chars(&self) -> u64 {
        self.inner.n_chars()
    }

    #[getter]
    fn position_bytes(&self) -> usize {
        self.inner.width().bytes()
    }

    /// A copy of the suffix array (uint32 or uint64, as stored).
    fn suffix_array<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        match &self.inner.sa {
            crate::suffix::SuffixArray::U32(s) => s.as_slice().to_vec().into_pyarray(py).into_any(),
            crate::suffix::SuffixArray::U64(s) => s.as_slice().to_vec().into_pyarray(py).into_any(),
        }
    }

    fn document(&self, d: usize) -> PyResult<String> {
        self.inner
            .document(d)
            .map(str::to_owned)
            .ok_or_else(|| PyIndexError::new_err(format!("no document {d}")))
    }

    fn count(&self, s: &Bound<'_, PyAny>) -> PyResult<u64> {
        Ok(self.inner.count(&text_arg(s, "s")?))
    }

    #[pyo3(signature = (queries, num_threads=None))]
    fn count_batch<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyArray1<u64>>> {
        let qs = texts_arg(queries, "queries")?;
        let idx = &self.inner;
        let out: Vec<u64> = py.detach(|| {
            with_threads(num_threads, || {
                sorted_batch(qs.len(), |i| qs[i].as_str(), |i| idx.count(&qs[i]))
            })
        })?;
        Ok(out.into_pyarray(py))
    }

    /// (places, total): the first `limit` (document, byte offset) places in corpus order.
    #[pyo3(signature = (s, limit=None))]
    fn locate(
        &self,
        s: &Bound<'_, PyAny>,
        limit: Option<usize>,
    ) -> PyResult<(Vec<(usize, usize)>, u64)> {
        Ok(self.inner.locate(&text_arg(s, "s")?, limit))
    }

    fn next_counts<'py>(&self, context: &Bound<'py, PyAny>) -> PyResult<NextRow<'py>> {
        next_row(
            context.py(),
            self.inner.next_counts(&text_arg(context, "context")?),
            &mut Default::default(),
        )
    }

    #[pyo3(signature = (contexts, num_threads=None))]
    fn next_counts_batch<'py>(
        &self,
        py: Python<'py>,
        contexts: &Bound<'py, PyAny>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<Vec<NextRow<'py>>> {
        let cs = texts_arg(contexts, "contexts")?;
        let idx = &self.inner;
        let out: Vec<crate::suffix::NextCounts> = py.detach(|| {
            with_threads(num_threads, || {
                sorted_batch(cs.len(), |i| cs[i].as_str(), |i| idx.next_counts(&cs[i]))
            })
        })?;
        let mut keys = Default::default();
        out.into_iter()
            .map(|nc| next_row(py, nc, &mut keys))
            .collect()
    }

    /// (probability, characters of context used); `n=None`: the unbounded n-gram.
    #[pyo3(signature = (context, token, n=None))]
    fn prob(
        &self,
        context: &Bound<'_, PyAny>,
        token: &Bound<'_, PyAny>,
        n: Option<usize>,
    ) -> PyResult<(f64, usize)> {
        Ok(self.inner.prob(
            &text_arg(context, "context")?,
            &text_arg(token, "token")?,
            n,
        ))
    }

    #[pyo3(signature = (contexts, tokens, n=None, num_threads=None))]
    #[allow(clippy::type_complexity)]
    fn prob_batch<'py>(
        &self,
        py: Python<'py>,
        contexts: &Bound<'py, PyAny>,
        tokens: &Bound<'py, PyAny>,
        n: Option<usize>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<(Bound<'py, PyArray1<f64>>, Bound<'py, PyArray1<u64>>)> {
        let cs = texts_arg(contexts, "contexts")?;
        let ts = texts_arg(tokens, "tokens")?;
        if cs.len() != ts.len() {
            return Err(invalid_argument(
                "tokens",
                format!("{} tokens for {} contexts", ts.len(), cs.len()),
            ));
        }
        let idx = &self.inner;
        let out: Vec<(f64, usize)> = py.detach(|| {
            with_threads(num_threads, || {
                sorted_batch(
                    cs.len(),
                    |i| (cs[i].as_str(), ts[i].as_str()),
                    |i| idx.prob(&cs[i], &ts[i], n),
                )
            })
        })?;
        let (p, k): (Vec<f64>, Vec<u64>) = out.into_iter().map(|(p, k)| (p, k as u64)).unzip();
        Ok((p.into_pyarray(py), k.into_pyarray(py)))
    }

    /// The repeated spans: arrays (document, start, end), byte offsets.
    #[pyo3(signature = (min_length, policy, num_threads=None))]
    #[allow(clippy::type_complexity)]
    fn repeated_spans<'py>(
        &self,
        py: Python<'py>,
        min_length: usize,
        policy: Named<Policy>,
        #[pyo3(from_py_with = arg::num_threads)] num_threads: Option<usize>,
    ) -> PyResult<(
        Bound<'py, PyArray1<u64>>,
        Bound<'py, PyArray1<u64>>,
        Bound<'py, PyArray1<u64>>,
    )> {
        let idx = &self.inner;
        let spans =
            py.detach(|| with_threads(num_threads, || idx.repeated_spans(min_length, policy.0)))??;
        let d: Vec<u64> = spans.iter().map(|s| s.doc as u64).collect();
        let s: Vec<u64> = spans.iter().map(|s| s.start as u64).collect();
        let e: Vec<u64> = spans.iter().map(|s| s.end as u64).collect();
        Ok((d.into_pyarray(py), s.into_pyarray(py), e.into_pyarray(py)))
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<SuffixBuilderCore>()?;
    m.add_class::<SuffixIndexCore>()?;
    m.add_class::<RecordsCore>()?;
    m.add_function(wrap_pyfunction!(render_spans, m)?)?;
    Ok(())
}
